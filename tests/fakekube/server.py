"""HTTP front of the fake Kubernetes API server: routing, REST verbs, chunked watch streams.

The wire format follows the real kube-apiserver closely enough that the official `kubernetes`
client, aiohttp and kubectl work against it unchanged (see tests/test_fakekube.py).
"""

from __future__ import annotations

import contextlib
import copy
import json
import socket
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from .discovery import VERBS, discovery
from .store import (
    ApiError,
    Event,
    Obj,
    Resource,
    Store,
    crd_resource,
    dumps,
    json_patch,
    load_crds,
    merge_patch,
    now,
    record_manager,
)

BUILTIN = [
    Resource("", ("v1",), "secrets", "Secret", status=False, custom=False, singular="secret"),
    Resource(
        "apiextensions.k8s.io",
        ("v1",),
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
        custom=False,
        singular="customresourcedefinition",
        short_names=("crd", "crds"),
    ),
]
REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound"}
REASONS |= {409: "Conflict", 410: "Gone", 422: "Invalid", 429: "TooManyRequests"}
REASONS |= {500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}
PATCH_TYPES = (
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
NO_ROUTE = ApiError(404, "NotFound", "the server could not find the requested resource", {})
END = b"0\r\n\r\n"  # the last chunk of a chunked body


@dataclass
class _Fault:
    verb: str
    plural: str
    code: int
    reason: str
    message: str | None  # None: build the RBAC "forbidden" message for the request
    times: int | None


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


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked watch streams, like the apiserver
    server: _HTTPServer

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
            if fake.token and self.headers.get("Authorization") != f"Bearer {fake.token}":
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
            store.watchers += 1
            store.cond.notify_all()
            first: list[Obj] = []
            if start in ("", "0"):  # "any version": synthetic ADDED for the current state
                first, last = store.list(res, req.ns or None, match)
            else:
                last = int(start) if int(start) >= store.oldest_rv else -1
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeKubeServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):  # resets and TLS refusals are routine
            super().handle_error(request, client_address)


class FakeKubeServer:
    """A fake kube-apiserver on 127.0.0.1 for the Longhorn custom resources, secrets and CRDs."""

    def __init__(
        self,
        crds: Path | None = None,
        *,
        token: str | None = None,
        user: str = "system:serviceaccount:default:test",
        namespace: str = "longhorn-system",
        git_version: str = "v1.32.0",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """`tls`: (certfile, keyfile) to serve HTTPS instead of plain HTTP."""
        self.token, self.user, self.namespace = token, user, namespace
        self.git_version, self.tls = git_version, tls
        self.store = Store()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._faults: list[_Fault] = []
        self._requests: list[tuple[str, str, dict[str, str]]] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        for res in BUILTIN:
            self.store.register(res)
        for crd in load_crds(crds) if crds else []:
            self.store.register(crd_resource(crd))
            self.put(crd)

    def start(self) -> FakeKubeServer:
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        if self.tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*self.tls)
            # Handshake lazily in the handler thread, so a stuck client cannot block accept().
            self._httpd.socket = ctx.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        # A short poll interval keeps stop() (and so every fixture teardown) quick.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def stop(self) -> None:
        """Go away like a crashed apiserver: open watches and keep-alive connections are cut."""
        if self._httpd is None:
            return
        with self.store.cond:
            self.store.closed = True
            self.store.cond.notify_all()
        self._httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        self._httpd.server_close()
        assert self._thread is not None
        self._thread.join()
        self._httpd = None

    def __enter__(self) -> FakeKubeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- test controls (thread-safe) -----------------------------------------------------
    @property
    def requests(self) -> list[tuple[str, str, dict[str, str]]]:
        """(method, path, query) of every request so far, oldest first."""
        return list(self._requests)

    @property
    def resource_version(self) -> int:
        return self.store.rv

    def resource(self, plural: str) -> Resource:
        if plural not in self.store.resources:
            raise KeyError(f"unknown resource {plural!r}; known: {sorted(self.store.resources)}")
        return self.store.resources[plural]

    def put(self, obj: Obj) -> Obj:
        """Create or overwrite an object as given (status included): ADDED or MODIFIED."""
        group = obj["apiVersion"].rpartition("/")[0]
        found = [
            r for r in self.store.resources.values() if (r.group, r.kind) == (group, obj["kind"])
        ]
        if not found:
            raise KeyError(f"no resource for {obj['apiVersion']} {obj['kind']}")
        res, obj = found[0], copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta.setdefault("namespace", self.namespace)
        with self.store.cond:
            old = self.store.objects.get((res.plural, meta.get("namespace", ""), meta["name"]))
            kept = {"uid": str(uuid.uuid4()), "creationTimestamp": now(), "generation": 1}
            for k, v in kept.items():
                meta.setdefault(k, (old or {}).get("metadata", {}).get(k, v))
            obj["apiVersion"] = res.api_version()
            return self.store._commit(res, obj, "MODIFIED" if old else "ADDED")

    def get(self, plural: str, ns: str, name: str) -> Obj | None:
        try:
            return self.store.get(self.resource(plural), ns, name)
        except ApiError:
            return None

    def update_status(self, plural: str, ns: str, name: str, status: Obj) -> Obj:
        """Merge `status` into the object's status like Longhorn's controller would: MODIFIED."""
        res = self.resource(plural)
        with self.store.cond:
            obj = self.store.get(res, ns, name)
            obj["status"] = merge_patch(obj.get("status") or {}, status)
            record_manager(obj, "longhorn-manager", "Update", res, "status")
            return self.store._commit(res, obj, "MODIFIED")

    def delete(self, plural: str, ns: str, name: str) -> Obj:
        """Remove an object at once (finalizers ignored): DELETED."""
        res = self.resource(plural)
        with self.store.cond:
            return self.store._commit(res, self.store.get(res, ns, name), "DELETED")

    def fail(
        self,
        verb: str,
        plural: str,
        code: int,
        *,
        reason: str | None = None,
        message: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` (None: every) matching request with a Status error.

        `plural` "x" matches x and x/status, "x/status" only the subresource."""
        if verb not in VERBS:
            raise ValueError(f"verb must be one of {VERBS}, not {verb!r}")
        msg = message or f"injected {code} for {verb} {plural}"
        fault = _Fault(verb, plural, code, reason or REASONS.get(code, "Unknown"), msg, times)
        with self._lock:
            self._faults.append(fault)

    def forbid(self, verb: str, plural: str, *, times: int | None = None) -> None:
        """Deny like RBAC, with the real apiserver's Forbidden wording."""
        if verb not in VERBS:
            raise ValueError(f"verb must be one of {VERBS}, not {verb!r}")
        with self._lock:
            self._faults.append(_Fault(verb, plural, 403, "Forbidden", None, times))

    def compact(self) -> None:
        """Forget the event history: a watch from an older resourceVersion gets 410 Expired."""
        self.store.compact()

    def drop_watches(self) -> None:
        """Cut every open watch connection without ending its chunked stream."""
        with self.store.cond:
            self.store.drop_gen += 1
            self.store.cond.notify_all()

    def wait_for_watchers(self, count: int, timeout: float = 30.0) -> None:
        """Block until `count` watch streams are open (a synchronisation aid for tests)."""
        with self.store.cond:
            if not self.store.cond.wait_for(lambda: self.store.watchers >= count, timeout):
                raise TimeoutError(f"{self.store.watchers} watches open, waited for {count}")

    def _check_fault(self, verb: str, res: Resource, sub: str, ns: str, name: str) -> None:
        with self._lock:
            fault = next(
                (
                    f
                    for f in self._faults
                    if (f.verb, f.plural) in {(verb, res.plural), (verb, f"{res.plural}/{sub}")}
                ),
                None,
            )
            if fault is None:
                return
            if fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
        message = fault.message
        if message is None:  # the wording of the apiserver's authorizer + NewForbidden
            resource = f"{res.plural}/{sub}" if sub else res.plural
            where = f'in the namespace "{ns}"' if ns else "at the cluster scope"
            why = f'User "{self.user}" cannot {verb} resource "{resource}" in API group '
            why += f'"{res.group}" {where}'
            message = (
                f'{res.gr} "{name}" is forbidden: {why}'
                if name
                else f"{res.gr} is forbidden: {why}"
            )
        details = {
            k: v for k, v in (("name", name), ("group", res.group), ("kind", res.plural)) if v
        }
        raise ApiError(fault.code, fault.reason, message, details)
