"""HTTP side of the fake API server: routing, REST verbs and chunked watch streams.

The wire format follows the real kube-apiserver closely enough that the official `kubernetes`
client, aiohttp and kubectl work against it unchanged (see tests/test_fakekube.py).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import yaml

from .discovery import discovery
from .store import (
    ApiError,
    Event,
    Obj,
    Resource,
    dumps,
    json_patch,
    merge_patch,
)

if TYPE_CHECKING:
    from .server import FakeKubeServer

PATCH_TYPES = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
NO_ROUTE = ApiError(404, "NotFound", "the server could not find the requested resource", {})
END = b"0\r\n\r\n"  # the last chunk of a chunked body


@dataclass
class _Req:
    verb: str
    res: Resource
    version: str
    ns: str
    name: str
    sub: str
    query: dict[str, str]
    body: bytes
    ctype: str
    manager: str

    @property
    def dry(self) -> bool:
        return self.query.get("dryRun") == "All"

    def out(self, obj: Obj) -> Obj:
        return obj | {"apiVersion": self.res.api_version(self.version)}


def _term(term: str, value: Callable[[Obj, str], str | None]) -> Callable[[Obj], bool]:
    """One selector term: "k=v", "k==v", "k!=v", or existence "k" / "!k" (labels only)."""
    neg = "!=" in term
    key, eq, want = term.replace("!=", "=").replace("==", "=").partition("=")
    if not eq:
        absent, key = key.startswith("!"), key.lstrip("!")
        return lambda obj: (value(obj, key) is None) == absent
    return lambda obj: (value(obj, key) == want) != neg


def _selector(query: dict[str, str], name: str = "") -> Callable[[Obj], bool]:
    """fieldSelector (metadata.name/namespace) and equality-based labelSelector, ANDed."""

    def field(obj: Obj, key: str) -> str | None:
        value: str | None = obj["metadata"].get(key.split(".")[1])
        return value

    def label(obj: Obj, key: str) -> str | None:
        value: str | None = (obj["metadata"].get("labels") or {}).get(key)
        return value

    fields = [t for t in query.get("fieldSelector", "").split(",") if t]
    fields += [f"metadata.name={name}"] if name else []
    for t in fields:  # custom resources support only these two field labels
        key = t.replace("!=", "=").partition("=")[0]
        if key not in ("metadata.name", "metadata.namespace"):
            raise ApiError(400, "BadRequest", f'field label not supported: "{key}"')
    tests = [_term(t, field) for t in fields]
    tests += [_term(t, label) for t in query.get("labelSelector", "").split(",") if t]
    return lambda obj: all(t(obj) for t in tests)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watch streams, like the apiserver
    server: KubeHTTPServer

    def setup(self) -> None:
        super().setup()
        with self.server.fake._lock:
            self.server.fake._conns.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.fake._lock:
                self.server.fake._conns.discard(self.connection)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep pytest output clean; tests read fake.requests instead

    def _send(self, code: int, payload: Obj) -> None:
        data = dumps(payload)
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _chunk(self, etype: str, obj: Obj) -> None:
        data = dumps({"type": etype, "object": obj}) + b"\n"
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def _handle(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        fake._requests.append((self.command, url.path, query))
        try:
            if fake.token and not _bearer(self.headers.get("Authorization"), fake.token):
                raise ApiError(401, "Unauthorized", "Unauthorized")
            result = self._route(url.path.strip("/").split("/"), query, body)
            if result is not None:
                self._send(*result)
        except ApiError as exc:
            self._send(exc.code, exc.status())
        except (ValueError, yaml.YAMLError) as exc:  # undecodable bodies
            self._send(400, ApiError(400, "BadRequest", str(exc)).status())
        except OSError:  # the client went away mid-response
            self.close_connection = True
        except Exception as exc:  # a bug here: answer loudly rather than drop the connection
            self._send(500, ApiError(500, "InternalError", f"fakekube: {exc!r}").status())

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _route(
        self, parts: list[str], query: dict[str, str], body: bytes
    ) -> tuple[int, Obj] | None:
        fake = self.server.fake
        if self.command == "GET":
            found = discovery(
                parts, fake.store.resources.values(), fake.url.split("//")[1], fake.git_version
            )
            if found is not None:
                return 200, found
        if parts[0] == "api" and len(parts) >= 3:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis" and len(parts) >= 4:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise NO_ROUTE
        ns = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            ns, rest = rest[1], rest[2:]
        plural, name, sub = [*rest, "", ""][:3]
        res = fake.store.resources.get(plural)
        if res is None or res.group != group or version not in res.versions or len(rest) > 3:
            raise NO_ROUTE
        if (ns and not res.namespaced) or (name and res.namespaced and not ns):
            raise NO_ROUTE
        if sub not in ("", "status") or (sub and not res.status):
            raise NO_ROUTE
        watch = query.get("watch") in ("true", "1")
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(
            self.command, "watch" if watch else "get" if name else "list"
        )
        if (verb == "create") == bool(name) and verb not in ("get", "list", "watch"):
            msg = "the server does not allow this method on the requested resource"
            raise ApiError(405, "MethodNotAllowed", msg, {})
        fake._check_fault(verb, res, sub, ns, name)
        ctype = self.headers.get("Content-Type", "application/json").split(";")[0].strip()
        manager = query.get("fieldManager") or self.headers.get("User-Agent", "").split("/")[0]
        req = _Req(verb, res, version, ns, name, sub, query, body, ctype, manager)
        if watch:
            self._watch(req)
            return None
        return self._verb(req)

    def _verb(self, req: _Req) -> tuple[int, Obj]:
        store, res = self.server.fake.store, req.res
        if req.verb == "get":
            return 200, req.out(store.get(res, req.ns, req.name))
        if req.verb == "list":
            items, rv = store.list(res, req.ns or None, _selector(req.query))
            meta = {"resourceVersion": str(rv)}
            api_version = res.api_version(req.version)
            items = [req.out(o) for o in items]
            return 200, {"kind": f"{res.kind}List", "apiVersion": api_version, "metadata": meta} | {
                "items": items
            }
        if req.verb == "delete":
            opts = json.loads(req.body) if req.body.strip() else {}
            gone = store.delete(res, req.ns, req.name, opts.get("preconditions") or {}, req.dry)
            if res.custom:  # custom resources answer with the object, built-ins with a Status
                return 200, req.out(gone)
            details = {"name": req.name, "kind": res.plural, "uid": gone["metadata"]["uid"]}
            return 200, {"kind": "Status", "apiVersion": "v1", "metadata": {}} | {
                "status": "Success",
                "details": details,
            }
        if req.ctype == "application/apply-patch+yaml" and req.verb == "patch":
            return self._apply(req)
        doc = json.loads(req.body)
        if req.verb in ("create", "update"):
            if not isinstance(doc, dict):
                raise ApiError(400, "BadRequest", "the request body must be a JSON object")
            _check_kind(req, doc)
        if req.verb == "create":
            return 201, req.out(store.create(res, req.ns, doc, req.manager, dry_run=req.dry))
        kw: dict[str, Any] = {"subresource": req.sub, "dry_run": req.dry}
        if req.verb == "update":
            return 200, req.out(store.update(res, req.ns, req.name, doc, req.manager, **kw))
        with store.cond:  # read and write under one lock: no spurious Conflict
            current = store.get(res, req.ns, req.name)
            if req.ctype == "application/json-patch+json":
                try:
                    new = json_patch(current, doc)
                except ValueError as exc:
                    raise ApiError(422, "Invalid", str(exc)) from exc
            elif req.ctype == "application/merge-patch+json" or (
                # the real server refuses strategic merge for custom resources
                req.ctype == "application/strategic-merge-patch+json" and not res.custom
            ):
                new = merge_patch(current, doc)
            else:
                msg = "the body of the request was in an unknown format - accepted media types "
                raise ApiError(415, "UnsupportedMediaType", msg + "include: " + PATCH_TYPES)
            if not isinstance(new, dict):
                raise ApiError(422, "Invalid", "the patch does not result in an object")
            new = store.update(res, req.ns, req.name, new, req.manager, check_rv=False, **kw)
            return 200, req.out(new)

    def _apply(self, req: _Req) -> tuple[int, Obj]:
        """Server-side apply: create when absent, else merge (no field ownership or conflicts)."""
        store = self.server.fake.store
        if not req.query.get("fieldManager"):
            why = "Required value: is required for apply patch"
            cause = {"reason": "FieldValueRequired", "message": why, "field": "fieldManager"}
            raise ApiError(
                422,
                "Invalid",
                f'PatchOptions.meta.k8s.io "" is invalid: fieldManager: {why}',
                {"group": "meta.k8s.io", "kind": "PatchOptions", "causes": [cause]},
            )
        doc = yaml.safe_load(req.body)
        if not isinstance(doc, dict):
            raise ApiError(400, "BadRequest", "the apply patch must be a YAML or JSON object")
        _check_kind(req, doc, required=True)
        meta = doc.setdefault("metadata", {})
        if meta.setdefault("name", req.name) != req.name:
            msg = "the name of the object does not match the name on the URL"
            raise ApiError(400, "BadRequest", msg)
        with store.cond:
            if (req.res.plural, req.ns, req.name) not in store.objects and not req.sub:
                meta.pop("resourceVersion", None)  # apply-create wipes it, plain create refuses it
                new = store.create(req.res, req.ns, doc, req.manager, dry_run=req.dry, op="Apply")
                return 201, req.out(new)
            new = merge_patch(store.get(req.res, req.ns, req.name), doc)
            kw: dict[str, Any] = {"subresource": req.sub, "dry_run": req.dry, "check_rv": False}
            new = store.update(req.res, req.ns, req.name, new, req.manager, operation="Apply", **kw)
            return 200, req.out(new)

    def _watch(self, req: _Req) -> None:
        store, res = self.server.fake.store, req.res
        start = req.query.get("resourceVersion", "")
        if start not in ("", "0") and not start.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resource version: {start!r}")
        deadline = time.monotonic() + float(req.query.get("timeoutSeconds") or 1800)
        match = _selector(req.query, req.name)

        def wanted(e: Event) -> bool:
            in_ns = not req.ns or e.obj["metadata"].get("namespace") == req.ns
            return e.plural == res.plural and in_ns and match(e.obj)

        with store.cond:
            gen = store.drop_gen
            first: list[Obj] = []
            if start in ("", "0"):  # "any version": synthetic ADDED for the current state
                first, last = store.list(res, req.ns or None, match)
            else:
                last = int(start) if int(start) >= store.oldest_rv else -1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        with store.cond:  # counted once the stream is open, for wait_for_watchers()
            store.watchers += 1
            store.cond.notify_all()
        try:
            if last < 0:  # the real server answers a compacted rv with an in-stream 410
                why = f"too old resource version: {start} ({store.oldest_rv})"
                self._chunk("ERROR", ApiError(410, "Expired", why).status())
                self.wfile.write(END)
                return
            for obj in first:
                self._chunk("ADDED", req.out(obj))
            while True:
                with store.cond:
                    while True:
                        if store.closed or store.drop_gen != gen:
                            # Hang up without the last chunk: what a dying apiserver looks like.
                            self.close_connection = True
                            self.connection.shutdown(socket.SHUT_RDWR)
                            return
                        batch = [e for e in store.events_after(last) if wanted(e)]
                        last = store.rv
                        remaining = deadline - time.monotonic()
                        if batch or remaining <= 0:
                            break
                        store.cond.wait(remaining)
                for e in batch:
                    self._chunk(e.type, req.out(e.obj))
                if not batch:  # timeoutSeconds reached: end the stream cleanly
                    if req.query.get("allowWatchBookmarks") in ("true", "1"):
                        mark = {"kind": res.kind, "apiVersion": res.api_version(req.version)}
                        self._chunk("BOOKMARK", mark | {"metadata": {"resourceVersion": str(last)}})
                    self.wfile.write(END)
                    return
        finally:
            with store.cond:
                store.watchers -= 1
                store.cond.notify_all()


def _check_kind(req: _Req, doc: Obj, required: bool = False) -> None:
    for field, expected in (
        ("apiVersion", req.res.api_version(req.version)),
        ("kind", req.res.kind),
    ):
        got = doc.get(field)
        if (got or required) and got != expected:
            msg = f"the {field} in the data ({got}) does not match the expected ({expected})"
            raise ApiError(400, "BadRequest", msg)


class KubeHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeKubeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # resets and TLS refusals are routine
            super().handle_error(request, client_address)


def _bearer(header: str | None, token: str) -> bool:
    """The scheme is case-insensitive, as kube-apiserver's bearer token authenticator takes it
    (the kubernetes client's in-cluster loader sends "bearer ...")."""
    scheme, _, value = (header or "").partition(" ")
    return scheme.lower() == "bearer" and value.strip() == token
