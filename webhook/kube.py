"""A small async Kubernetes API client on aiohttp: GET, paginated list and watch streams.

The sync `kubernetes` package only reads the kubeconfig or the in-cluster service account
(host, CA, client certificate, token); every request goes through aiohttp so that nothing
blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from longhorn_bi.engine.errors import ClusterError

# A watch line is one whole object; Kubernetes caps objects at about 1.5 MiB.
MAX_WATCH_LINE = 16 * 1024 * 1024


class ApiStatusError(ClusterError):
    """The API server answered with an error Status."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(f"Kubernetes API answered {code} {reason}: {message}")
        self.code = code
        self.reason = reason


class Expired(ApiStatusError):
    """410 Gone: the resourceVersion is too old; list again."""


def _status_error(code: int, body: Any) -> ApiStatusError:
    body = body if isinstance(body, Mapping) else {}
    code = body.get("code") if isinstance(body.get("code"), int) else code
    reason = str(body.get("reason") or "")
    message = str(body.get("message") or "")[:500]
    return (Expired if code == 410 else ApiStatusError)(code, reason, message)


@dataclass
class KubeAuth:
    """Where the API server is and how to talk to it, as read from a kubeconfig."""

    host: str
    ssl_context: ssl.SSLContext | None = None  # None: plain http (tests only)
    token: str = field(default="", repr=False)  # never in a log line or a traceback
    # Re-reads a rotating token (the in-cluster service account's is renewed hourly).
    refresh: Callable[[], str] | None = field(default=None, repr=False)

    async def header(self) -> dict[str, str]:
        if self.refresh is not None:
            self.token = await asyncio.to_thread(self.refresh)
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}


def bearer_token(api_key: Mapping[str, Any], prefixes: Mapping[str, Any]) -> str:
    """The bare token of a kubernetes client Configuration's api_key.

    The key is "BearerToken" in recent clients ("authorization" in older ones), and the
    in-cluster loader stores the value as "bearer <token>", in lower case.
    """
    for key in ("BearerToken", "authorization"):
        value = str(api_key.get(key) or "")
        if value:
            prefix = str(prefixes.get(key) or "")
            value = f"{prefix} {value}".strip() if prefix else value.strip()
            scheme, _, rest = value.partition(" ")
            return rest.strip() if scheme.lower() == "bearer" and rest else value
    return ""


def load_configuration(kubeconfig: Path | None) -> Any:
    """The kubernetes client's Configuration of the kubeconfig, or of the in-cluster service
    account when none is given and the process runs in a pod. Blocking."""
    from kubernetes import client
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    config: Any = kube_config  # the loaders have no type hints
    cfg: Any = client.Configuration()
    try:
        if kubeconfig is not None:
            config.load_kube_config(config_file=str(kubeconfig), client_configuration=cfg)
        else:
            try:
                config.load_incluster_config(client_configuration=cfg)
            except ConfigException:
                config.load_kube_config(client_configuration=cfg)
    except (ConfigException, OSError, ValueError, TypeError) as exc:
        where = f"--kubeconfig {kubeconfig}" if kubeconfig else "the default kubeconfig"
        raise ClusterError(
            f"cannot read {where}: {exc}",
            hint="give --kubeconfig, or run in a pod with a service account",
        ) from exc
    return cfg


def load_auth(kubeconfig: Path | None) -> KubeAuth:
    """Host, CA, client certificate and token of the kubeconfig, or of the in-cluster
    service account when none is given and the process runs in a pod. Blocking: call it
    before the server starts or in a thread."""
    cfg = load_configuration(kubeconfig)

    def token_of(c: Any) -> str:
        return bearer_token(c.api_key or {}, c.api_key_prefix or {})

    refresh: Callable[[], str] | None = None
    if cfg.refresh_api_key_hook is not None:

        def refresh() -> str:
            cfg.refresh_api_key_hook(cfg)
            return token_of(cfg)

    context: ssl.SSLContext | None = None
    if cfg.host.startswith("https"):
        context = ssl.create_default_context(cafile=cfg.ssl_ca_cert or None)
        if not cfg.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if cfg.cert_file:
            context.load_cert_chain(cfg.cert_file, cfg.key_file)
    return KubeAuth(cfg.host.rstrip("/"), context, token_of(cfg), refresh)


class KubeClient:
    """GET, list and watch on one API server, through one aiohttp session."""

    def __init__(self, auth: KubeAuth, *, request_timeout: float = 30.0) -> None:
        self.auth = auth
        self.request_timeout = request_timeout
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> KubeClient:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.auth.ssl_context or False),
            headers={"Accept": "application/json", "User-Agent": "longhorn-bi-webhook"},
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("KubeClient used outside `async with`")
        return self._session

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> Any:
        """The decoded JSON of a GET; ApiStatusError for an error status."""
        async with self.session.get(
            self.auth.host + path,
            params=params,
            headers=await self.auth.header(),
            timeout=aiohttp.ClientTimeout(total=self.request_timeout),
        ) as resp:
            text = await resp.text()
            try:
                body = json.loads(text) if text else {}
            except ValueError:
                body = {"message": text[:200]}
            if resp.status != 200:
                raise _status_error(resp.status, body)
            return body

    async def list(self, path: str, params: Mapping[str, str]) -> tuple[list[Any], str]:
        """Every item (following `continue`) and the list's resourceVersion."""
        items: list[Any] = []
        query = {**params, "limit": "500"}
        while True:
            page = await self.get(path, query)
            if not isinstance(page, Mapping) or not isinstance(page.get("items"), list):
                raise ClusterError(f"the API server's list of {path} has no items")
            items.extend(page["items"])
            meta = page.get("metadata") if isinstance(page.get("metadata"), Mapping) else {}
            token = meta.get("continue") if isinstance(meta, Mapping) else None
            if not token:
                rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
                return items, str(rv or "")
            query = {**params, "limit": "500", "continue": str(token)}

    async def watch(
        self,
        path: str,
        params: Mapping[str, str],
        timeout_seconds: int,
        on_open: Callable[[], None] | None = None,
    ) -> AsyncIterator[tuple[str, Any]]:
        """(type, object) events until the server ends the stream.

        ERROR events become exceptions (Expired for 410). A silent connection ends with a
        read timeout a little after the server's own `timeoutSeconds`.
        """
        query = {
            **params,
            "watch": "true",
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_seconds),
        }
        async with self.session.get(
            self.auth.host + path,
            params=query,
            headers=await self.auth.header(),
            timeout=aiohttp.ClientTimeout(
                total=None, connect=self.request_timeout, sock_read=timeout_seconds + 30
            ),
        ) as resp:
            if resp.status != 200:
                text = await resp.text()
                try:
                    body = json.loads(text)
                except ValueError:
                    body = {"message": text[:200]}
                raise _status_error(resp.status, body)
            if on_open is not None:
                on_open()
            buffer = bytearray()
            async for chunk in resp.content.iter_any():
                buffer += chunk
                while (end := buffer.find(b"\n")) >= 0:
                    line = bytes(buffer[:end])
                    del buffer[: end + 1]
                    if line.strip():
                        yield _event(line)
                if len(buffer) > MAX_WATCH_LINE:
                    raise ClusterError(f"a watch event of {path} is larger than 16 MiB")
            if buffer.strip():
                yield _event(bytes(buffer))


def _event(line: bytes) -> tuple[str, Any]:
    try:
        event = json.loads(line)
    except ValueError as exc:
        raise ClusterError(f"a watch event is not JSON: {line[:80]!r}") from exc
    if not isinstance(event, Mapping) or not isinstance(event.get("type"), str):
        raise ClusterError(f"a watch event has no type: {line[:80]!r}")
    if event["type"] == "ERROR":
        raise _status_error(500, event.get("object"))
    return event["type"], event.get("object")
