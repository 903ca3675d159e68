"""The HTTPS listener, bounded against hostile clients.

Every accepted connection costs about 300 KiB once TLS starts (asyncio's SSL protocol and
its buffers), so the cap must hold before the handshake: the listener accepts plain TCP,
and only within the cap starts TLS on it (`loop.start_tls`, with a handshake deadline) and
hands it to aiohttp's handler. At the cap a new connection takes the place of the oldest one
still in its handshake (silent connections cost an attacker nothing, and must not lock the
API server out); when every connection is past its handshake, the new one is closed at once. aiohttp's keep-alive timer,
armed from the first byte on, closes a connection that has not sent whole headers in time or
stays idle; the body has its own deadline in the handler (see app.py).
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler


@dataclass(frozen=True)
class Limits:
    """What one client may hold. Defaults sized from benchmarks/bench_hostile.py."""

    # TLS connections, in handshake or open, ~0.6 MiB each. The API server keeps a few per
    # replica (HTTP/1.1 keep-alive).
    max_connections: int = 64
    handshake_seconds: float = 5.0
    # Headers of a request must arrive, and an idle kept-alive connection is closed, within
    # this (the API server reuses connections and opens a new one when it needs to).
    header_idle_seconds: float = 10.0
    body_seconds: float = 10.0  # the body of a review, once its headers came
    max_body_bytes: int = 4 * 1024 * 1024  # an UPDATE carries the object twice
    backlog: int = 128
    max_line_size: int = 8190
    max_field_size: int = 8190
    max_headers: int = 64

    def handler_args(self) -> dict[str, Any]:
        """Keyword arguments of web.AppRunner for aiohttp's per-connection handler."""
        return {
            "keepalive_timeout": self.header_idle_seconds,
            "max_line_size": self.max_line_size,
            "max_field_size": self.max_field_size,
            "max_headers": self.max_headers,
            # The API server never compresses a review; a gzip bomb must stay a small body.
            "auto_decompress": False,
            # After an answer to a body not read (too large, too slow): drop what still
            # comes for this long, then close.
            "lingering_time": 1.0,
        }


class _Gate(asyncio.Protocol):
    """The plain-TCP protocol of one accepted connection until TLS takes over."""

    def __init__(self, site: BoundedTLSSite) -> None:
        self._site = site

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if not self._site.admit():
            transport.abort()  # over the cap: no TLS, no buffers, nothing held
            return
        transport.pause_reading()
        task = asyncio.get_running_loop().create_task(self._site.upgrade(transport))
        self._site.track(task, transport)


class BoundedTLSSite(web.BaseSite):
    """An HTTPS site of `runner` on host:port with a cap on connections (see module doc)."""

    __slots__ = (
        "_handshakes",
        "_host",
        "_port",
        "evicted",
        "limits",
        "pending",
        "refused",
        "tasks",
    )

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext,
        limits: Limits,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=limits.backlog)
        self._host, self._port = host, port
        self.limits = limits
        self.pending = 0  # connections in their TLS handshake
        self.refused = 0  # connections aborted at the cap, since start
        self.evicted = 0  # handshakes aborted for a newer connection, since start
        self.tasks: set[asyncio.Task[None]] = set()
        # The handshakes in progress and their connections, oldest first (a dict keeps
        # insertion order).
        self._handshakes: dict[asyncio.Task[None], asyncio.Transport] = {}

    @property
    def name(self) -> str:
        return f"https://{self._host}:{self._port}"

    def open_connections(self) -> int:
        server = self._runner.server
        return self.pending + (len(server.connections) if server is not None else 0)

    def admit(self) -> bool:
        if self.open_connections() >= self.limits.max_connections:
            oldest = next(iter(self._handshakes), None)
            if oldest is None:
                self.refused += 1
                return False
            self._handshakes.pop(oldest).abort()
            oldest.cancel()  # its place comes back when it is done (see track)
            self.evicted += 1
        self.pending += 1
        return True

    def track(self, task: asyncio.Task[None], transport: asyncio.Transport) -> None:
        """Count an admitted connection's handshake until its task is done, however it ends
        (a task cancelled before it ran never runs its own cleanup)."""
        self.tasks.add(task)
        self._handshakes[task] = transport

        def done(task: asyncio.Task[None]) -> None:
            self.tasks.discard(task)
            self.pending -= 1
            if self._handshakes.pop(task, None) is not None and task.cancelled():
                transport.abort()

        task.add_done_callback(done)

    async def upgrade(self, transport: asyncio.Transport) -> None:
        """TLS on an admitted connection, then aiohttp's handler on top."""
        server = self._runner.server
        assert server is not None and self._ssl_context is not None
        handler: RequestHandler = server()
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                handler,
                self._ssl_context,
                server_side=True,
                ssl_handshake_timeout=self.limits.handshake_seconds,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError):
            transport.abort()
            return
        except asyncio.CancelledError:
            transport.abort()  # evicted, or the site stops
            raise
        if tls is None or tls.is_closing():
            return
        handler.connection_made(tls)

    async def start(self) -> None:
        await super().start()
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Gate(self),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
        )

    async def stop(self) -> None:
        await super().stop()
        for task in list(self.tasks):
            task.cancel()
