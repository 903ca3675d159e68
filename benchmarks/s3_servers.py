"""Local S3 servers for bench_store: moto (Python, in memory, from the venv) and s3rver
(Node, on disk: `npm install -g s3rver`), each in its own process on 127.0.0.1.

Restore concurrency only shows where the server is not the bottleneck; moto serves a GET
with one Python thread per request under one GIL, so a second server is measured too.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BUCKET = "bench"


@dataclass(frozen=True)
class S3Server:
    name: str
    endpoint: str
    env: dict[str, str]  # what our store reads: credentials and the endpoint
    process: subprocess.Popen[bytes]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(port: int) -> None:
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"the S3 server on port {port} did not start")


def s3rver_command() -> str | None:
    return shutil.which("s3rver")


def available() -> list[str]:
    """The servers this machine can run: moto always (a test dependency), s3rver if installed."""
    return ["moto"] + (["s3rver"] if s3rver_command() else [])


@contextlib.contextmanager
def serve(name: str) -> Iterator[S3Server]:
    """Start server `name` with an empty bucket BUCKET; stop it (and drop its data) after."""
    port = _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as data:
        if name == "moto":
            argv = [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1"]
            argv += ["-p", str(port)]
            keys = ("bench", "bench-secret")
        else:
            argv = [str(s3rver_command()), "-d", data, "-a", "127.0.0.1", "-p", str(port)]
            argv += ["--silent", "--configure-bucket", BUCKET]
            keys = ("S3RVER", "S3RVER")  # the only credentials s3rver accepts
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_for(port)
            if name == "moto":
                import boto3

                boto3.client(
                    "s3",
                    endpoint_url=endpoint,
                    region_name="us-east-1",
                    aws_access_key_id=keys[0],
                    aws_secret_access_key=keys[1],
                ).create_bucket(Bucket=BUCKET)
            env = {
                "AWS_ACCESS_KEY_ID": keys[0],
                "AWS_SECRET_ACCESS_KEY": keys[1],
                "AWS_ENDPOINTS": endpoint,
            }
            yield S3Server(name, endpoint, env, process)
        finally:
            process.terminate()
            process.wait(timeout=30)
