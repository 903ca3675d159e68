"""The webhook under hostile clients and hostile objects: memory held, connections, latency.

The real `longhorn-bi-webhook serve` (default limits), its caches synced from the fake API
server, on 127.0.0.1; the attackers are this process. Each phase is bounded in time and
stops by itself:

- `idle`: 1,000 TCP connections opened and held, saying nothing (no TLS handshake).
- `slow`: 1,000 TLS connections that send their headers one byte a second.
- while each runs, a normal review is posted every 20 ms on a kept-alive connection (as the
  API server does) and on a new connection each time: latency and failures.
- `worst`: the largest objects the CRD schema allows under the API server's 3 MiB request
  limit: a BackupBackingImage with as many invalid `spec.labels` keys as fit, and a restore
  BackingImage whose `backup-url` is one 3 MiB string: review time and the server's peak RSS.

Run: python -m benchmarks.bench_hostile [--connections N] [--seconds S]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http.client
import json
import os
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_webhook import (
    _cluster_objects,
    _free_port,
    _wait_port,
    admission_review,
    make_certs,
)
from benchmarks.common import result

NS = "longhorn-system"
API_SERVER_LIMIT = 3 * 1024 * 1024  # kube-apiserver's request body limit


def _status(pid: int, field: str) -> int:
    """A VmRSS/VmHWM figure of `pid`, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    return 0


class Prober(threading.Thread):
    """Posts a normal review every 20 ms until stopped, kept-alive and on new connections."""

    def __init__(self, port: int, ca: Path) -> None:
        super().__init__(daemon=True)
        self.port, self.context = port, ssl.create_default_context(cafile=str(ca))
        self.body = json.dumps(admission_review()).encode()
        self.stop = threading.Event()
        self.kept: list[float] = []
        self.fresh: list[float] = []
        self.failures = {"kept": 0, "fresh": 0}

    def _post(self, conn: http.client.HTTPSConnection) -> float:
        start = time.perf_counter()
        conn.request("POST", "/validate", self.body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = json.loads(response.read())
        if response.status != 200 or answer["response"]["allowed"] is not True:
            raise RuntimeError(f"unexpected answer {response.status}")
        return time.perf_counter() - start

    def _connect(self) -> http.client.HTTPSConnection:
        return http.client.HTTPSConnection("127.0.0.1", self.port, timeout=5, context=self.context)

    def run(self) -> None:
        kept = self._connect()
        while not self.stop.is_set():
            try:
                self.kept.append(self._post(kept))
            except (OSError, http.client.HTTPException, RuntimeError):
                self.failures["kept"] += 1
                kept.close()
                kept = self._connect()
            fresh = self._connect()
            try:
                self.fresh.append(self._post(fresh))
            except (OSError, http.client.HTTPException, RuntimeError):
                self.failures["fresh"] += 1
            finally:
                fresh.close()
            time.sleep(0.02)
        kept.close()

    def figures(self) -> dict[str, object]:
        def pct(values: list[float], q: float) -> float:
            ordered = sorted(values)
            return round(ordered[int(q * (len(ordered) - 1))] * 1000, 1) if ordered else -1

        return {
            "kept_p50_ms": pct(self.kept, 0.5),
            "kept_p99_ms": pct(self.kept, 0.99),
            "kept_failed": self.failures["kept"],
            "fresh_p50_ms": pct(self.fresh, 0.5),
            "fresh_p99_ms": pct(self.fresh, 0.99),
            "fresh_ok": len(self.fresh),
            "fresh_failed": self.failures["fresh"],
        }


async def _quiet(seconds: float) -> dict[str, object]:
    await asyncio.sleep(seconds)
    return {}


async def _idle(port: int, count: int, seconds: float) -> dict[str, object]:
    """`count` TCP connections held open, silent; how many the server closed at once."""
    pairs = []
    for _ in range(count):
        with contextlib.suppress(OSError):  # a full backlog: counted as not opened
            pairs.append(await asyncio.open_connection("127.0.0.1", port))
    await asyncio.sleep(0.5)
    closed_at_once = sum(1 for reader, _ in pairs if reader.at_eof())
    await asyncio.sleep(seconds)
    closed_by_deadline = sum(1 for reader, _ in pairs if reader.at_eof()) - closed_at_once
    for _, writer in pairs:
        writer.close()
    return {
        "opened": len(pairs),
        "refused_at_once": closed_at_once,
        "closed_by_handshake_deadline": closed_by_deadline,
    }


async def _slow(port: int, ca: Path, count: int, seconds: float) -> dict[str, object]:
    """`count` TLS connections sending one header byte a second; how long each was held."""
    context = ssl.create_default_context(cafile=str(ca))
    header = b"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 10\r\n"
    held: list[float] = []
    refused = 0
    deadline = time.monotonic() + seconds

    async def one() -> None:
        nonlocal refused
        start = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(
                    "127.0.0.1", port, ssl=context, server_hostname="127.0.0.1"
                ),
                10,
            )
        except (OSError, ssl.SSLError, TimeoutError):
            refused += 1
            return
        try:
            for byte in header:
                if time.monotonic() > deadline:
                    break
                writer.write(bytes([byte]))
                await writer.drain()
                try:
                    if await asyncio.wait_for(reader.read(1), 1.0) == b"":
                        break
                except TimeoutError:
                    continue
        except (OSError, ssl.SSLError):
            pass
        held.append(time.monotonic() - start)
        writer.close()

    await asyncio.gather(*(one() for _ in range(count)))
    held.sort()
    return {
        "tls_opened": len(held),
        "refused": refused,
        "held_max_s": round(held[-1], 1) if held else 0,
        "held_median_s": round(held[len(held) // 2], 1) if held else 0,
    }


def _attack(
    name: str, pid: int, port: int, ca: Path, run: Any, seconds: float
) -> dict[str, object]:
    prober = Prober(port, ca)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _status(pid, "VmRSS"))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    prober.start()
    figures = asyncio.run(run())
    prober.stop.set()
    prober.join(30)
    done.set()
    sampler.join(5)
    time.sleep(seconds / 2)  # the server lets go of what it held
    return {
        **figures,
        "peak_rss_mib": peak[0],
        "rss_after_mib": _status(pid, "VmRSS"),
        **prober.figures(),
    }


def _worst_labels() -> dict[str, Any]:
    """A BackupBackingImage with as many invalid label keys as fit under the 3 MiB limit."""
    review = admission_review()
    labels: dict[str, str] = {}
    obj: dict[str, Any] = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackupBackingImage",
        "metadata": {"name": "image-7", "namespace": NS},
        "spec": {"userCreated": True, "backingImage": "image-7", "labels": labels},
    }
    review["request"]["kind"]["kind"] = "BackupBackingImage"
    review["request"]["object"] = obj
    base = len(json.dumps(review))
    # Each `"-<n>": "", ` is an invalid key (starts with '-'); n grows, so sizes vary.
    size, n = base, 0
    while True:
        key = f"-{n}"
        size += len(key) + 8
        if size >= API_SERVER_LIMIT - 64:
            break
        labels[key] = ""
        n += 1
    return review


def _worst_url() -> dict[str, Any]:
    review = admission_review()
    params = review["request"]["object"]["spec"]["sourceParameters"]
    filler = API_SERVER_LIMIT - len(json.dumps(review)) - 64
    params["backup-url"] = "s3://b@r/[" + "%" * filler + "?backingImage=image-7"
    return review


def _worst(pid: int, port: int, ca: Path) -> None:
    context = ssl.create_default_context(cafile=str(ca))
    for name, review in [("labels", _worst_labels()), ("backup-url", _worst_url())]:
        body = json.dumps(review).encode()
        before = _status(pid, "VmHWM")
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=60, context=context)
        start = time.perf_counter()
        conn.request("POST", "/validate", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        elapsed = time.perf_counter() - start
        conn.close()
        answer = json.loads(raw).get("response", {})
        result(
            f"hostile.worst.{name}",
            body_kib=len(body) // 1024,
            status=response.status,
            allowed=answer.get("allowed"),
            answer_bytes=len(raw),
            review_ms=round(elapsed * 1000, 1),
            peak_rss_before_mib=before,
            peak_rss_after_mib=_status(pid, "VmHWM"),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=12.0)
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])

    from tests.fakekube import FakeKubeServer, write_kubeconfig
    from tests.support import crd_file, volume_crd_file

    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    binary = str(Path(sys.executable).parent / "longhorn-bi-webhook")
    make_certs(work)
    ca = work / "ca.crt"
    with FakeKubeServer(crds=(crd_file("1.12"), volume_crd_file("1.12"))) as fake:
        for obj in _cluster_objects():
            fake.put(obj)
        kubeconfig = write_kubeconfig(work / "kubeconfig", fake.url)
        metrics_port, port = _free_port(), _free_port()
        webhook = subprocess.Popen(
            [
                binary,
                "serve",
                "--host=127.0.0.1",
                f"--port={port}",
                f"--metrics-port={metrics_port}",
                f"--kubeconfig={kubeconfig}",
                f"--cert-file={work / 'tls.crt'}",
                f"--key-file={work / 'tls.key'}",
            ],
            env={**os.environ, "LONGHORN_BI_WEBHOOK_LOG_LEVEL": "error"},
        )
        try:
            _wait_port(metrics_port)
            _wait_port(port)
            time.sleep(1.0)
            pid = webhook.pid
            result("hostile.start", rss_mib=_status(pid, "VmRSS"), max_connections=64)
            quiet = _attack("quiet", pid, port, ca, lambda: _quiet(3.0), args.seconds)
            result("hostile.quiet", **quiet)
            idle = _attack(
                "idle",
                pid,
                port,
                ca,
                lambda: _idle(port, args.connections, args.seconds),
                args.seconds,
            )
            result("hostile.idle", connections=args.connections, **idle)
            slow = _attack(
                "slow",
                pid,
                port,
                ca,
                lambda: _slow(port, ca, args.connections, args.seconds),
                args.seconds,
            )
            result("hostile.slow", connections=args.connections, **slow)
            _worst(pid, port, ca)
            result("hostile.end", rss_mib=_status(pid, "VmRSS"), peak_mib=_status(pid, "VmHWM"))
        finally:
            webhook.terminate()
            webhook.wait(60)


if __name__ == "__main__":
    main()
