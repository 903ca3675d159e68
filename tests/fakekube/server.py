"""The fake Kubernetes API server: lifecycle and the thread-safe controls tests use."""

from __future__ import annotations

import contextlib
import copy
import socket
import ssl
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .discovery import VERBS
from .handler import Handler, KubeHTTPServer
from .store import (
    ApiError,
    Obj,
    Resource,
    Store,
    crd_resource,
    load_crds,
    merge_patch,
    now,
    record_manager,
)

BUILTIN = [
    Resource("", ("v1",), "secrets", "Secret", status=False, custom=False, singular="secret"),
    # for `verify --in-cluster`: its Job, the pods' RBAC and the Events of a failure
    Resource("", ("v1",), "events", "Event", status=False, custom=False, singular="event"),
    Resource(
        "",
        ("v1",),
        "serviceaccounts",
        "ServiceAccount",
        status=False,
        custom=False,
        singular="serviceaccount",
    ),
    Resource("batch", ("v1",), "jobs", "Job", custom=False, singular="job"),
    Resource(
        "", ("v1",), "configmaps", "ConfigMap", status=False, custom=False, singular="configmap"
    ),
    Resource(
        "rbac.authorization.k8s.io",
        ("v1",),
        "roles",
        "Role",
        status=False,
        custom=False,
        singular="role",
    ),
    Resource(
        "rbac.authorization.k8s.io",
        ("v1",),
        "rolebindings",
        "RoleBinding",
        status=False,
        custom=False,
        singular="rolebinding",
    ),
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


@dataclass
class _Fault:
    verb: str
    plural: str
    code: int
    reason: str
    message: str | None  # None: build the RBAC "forbidden" message for the request
    times: int | None


class FakeKubeServer:
    """A fake kube-apiserver on 127.0.0.1 for the Longhorn custom resources, secrets and CRDs."""

    def __init__(
        self,
        crds: Path | Sequence[Path] | None = None,
        *,
        token: str | None = None,
        user: str = "system:serviceaccount:default:test",
        namespace: str = "longhorn-system",
        git_version: str = "v1.32.0",
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        """`crds`: CRD file(s) to serve; `tls`: (certfile, keyfile) to serve HTTPS instead of
        plain HTTP."""
        self.token, self.user, self.namespace = token, user, namespace
        self.git_version, self.tls = git_version, tls
        self.store = Store()
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._faults: list[_Fault] = []
        self._requests: list[tuple[str, str, dict[str, str]]] = []
        self._httpd: KubeHTTPServer | None = None
        self._thread: threading.Thread | None = None
        for res in BUILTIN:
            self.store.register(res)
        files = [crds] if isinstance(crds, Path) else list(crds or ())
        for crd in (crd for path in files for crd in load_crds(path)):
            self.store.register(crd_resource(crd))
            self.put(crd)

    def start(self) -> FakeKubeServer:
        self._httpd = KubeHTTPServer(("127.0.0.1", 0), Handler)
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
