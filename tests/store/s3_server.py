"""S3 for the tests: a moto server on 127.0.0.1, and a fault-injecting HTTP proxy that also
stands before the other HTTP stores (Azurite): S3 and Azure answer errors in the same XML."""

from __future__ import annotations

import http.client
import socket
import struct
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.store.targets import StoreTarget

ACCESS_KEY = "AKIAEXAMPLEKEYID4242"
SECRET_KEY = "s3cr3t-Value/That+MustNeverShow"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


_bucket_counter = iter(range(1, 1_000_000))


@pytest.fixture
def s3_bucket(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket; the environment carries Longhorn's credential keys. Returns its name."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_ENDPOINTS", moto_endpoint)
    for var in ("VIRTUAL_HOSTED_STYLE", "AWS_CERT", "HTTP_PROXY", "HTTPS_PROXY", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    name = f"bucket-{next(_bucket_counter)}"
    moto_client(moto_endpoint).create_bucket(Bucket=name)
    return name


def moto_client(endpoint: str) -> Any:
    """A boto3 S3 client of the test server, to look at or damage what a test stored."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture
def s3_store_target(moto_endpoint: str, s3_bucket: str) -> Iterator[StoreTarget]:
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_ENDPOINTS": moto_endpoint,
    }
    yield StoreTarget(
        f"s3://{s3_bucket}@us-east-1/backups/",
        env,
        secrets=(SECRET_KEY,),
        endpoint_var="AWS_ENDPOINTS",
    )


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # clients that hang up (after an injected reset) are expected here


class FaultProxy:
    """Forwards HTTP to `upstream`; resets, fails (500) or truncates a share of the requests.

    `reset_every`: the connection is reset, unanswered, on every n-th request;
    `error_every`: answered with S3's 500 InternalError or 503 SlowDown, in turn; `truncate_every`: a GET answer is
    cut in the middle of its body; `delay`: seconds added to every request.
    """

    def __init__(
        self,
        upstream: str,
        *,
        reset_every: int = 0,
        error_every: int = 0,
        truncate_every: int = 0,
        delay: float = 0.0,
    ) -> None:
        target = urlsplit(upstream)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.reset_every, self.error_every = reset_every, error_every
        self.truncate_every, self.delay = truncate_every, delay
        self.count = 0
        self.injected = {"reset": 0, "error": 0, "truncate": 0}
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                proxy.forward(self, body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _decide(self, method: str) -> str:
        with self._lock:
            self.count += 1
            n = self.count
            fault = ""
            if self.reset_every and n % self.reset_every == 0:
                fault = "reset"
            elif self.error_every and n % self.error_every == 0:
                fault = "error"
            elif method == "GET" and self.truncate_every and n % self.truncate_every == 0:
                fault = "truncate"
            if fault:
                self.injected[fault] += 1
            return fault

    @staticmethod
    def _reset(handler: BaseHTTPRequestHandler) -> None:
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True

    def forward(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        if self.delay:
            time.sleep(self.delay)
        fault = self._decide(handler.command)
        if fault == "reset":
            self._reset(handler)
            return
        if fault == "error":  # alternately a 500 and a 503 throttling answer
            status, code = (
                (503, b"SlowDown") if self.injected["error"] % 2 else (500, b"InternalError")
            )
            payload = (
                b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>' + code + b"</Code>"
                b"<Message>Please try again.</Message></Error>"
            )
            handler.send_response(status)
            handler.send_header("Content-Type", "application/xml")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        upstream = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            headers = {k: v for k, v in handler.headers.items() if k.lower() != "expect"}
            upstream.request(handler.command, handler.path, body=body or None, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        finally:
            upstream.close()
        handler.send_response(answer.status)
        for key, value in answer.getheaders():
            if key.lower() not in (
                "transfer-encoding",
                "connection",
                "content-length",
                "date",
                "server",
            ):
                handler.send_header(key, value)
        # A HEAD answer has no body but the length of the object it describes.
        length = answer.getheader("Content-Length") if handler.command == "HEAD" else None
        handler.send_header("Content-Length", length or str(len(data)))
        handler.end_headers()
        if handler.command == "HEAD":
            return
        if fault == "truncate" and len(data) > 64:
            handler.wfile.write(data[: len(data) // 2])
            handler.wfile.flush()
            self._reset(handler)
            return
        handler.wfile.write(data)
