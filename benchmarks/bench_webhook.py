"""Webhook throughput and latency over TLS, side by side with the ceiling of this machine.

The ceiling is a bare aiohttp handler, on the same TLS setup, that parses the same JSON and
answers a constant allow. The webhook is the real `longhorn-bi-webhook serve`, its caches
synced from the fake API server (20 backing images, 20 backups, a target). wrk posts a
realistic AdmissionReview (a restore BackingImage CREATE as kube-apiserver sends it) at
concurrency 16 and 64 for 10 s each. Targets: >= 0.7x the ceiling's requests/s, and p99
<= 20 ms at concurrency 16.

Two streams of bodies: the same review again and again (`same`), and 4096 distinct reviews
in turn (`distinct`: own uid, name, backing image and backup-url), more than the webhook's
memo of parsed backup URLs holds, so that no cache answers for the object.

Run: python -m benchmarks.bench_webhook [--seconds N] [--rounds N] [--bodies same|distinct|both].
Needs wrk (Debian package `wrk`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks.common import result

CHECKSUM = "c" * 128
TARGET = "s3://backupbucket@us-east-1/longhorn/"
NS = "longhorn-system"


def admission_review(index: int | None = None) -> dict[str, Any]:
    """What kube-apiserver sends for `kubectl apply` of a restore BackingImage.

    With `index`, review number `index` of a stream of distinct restores: its own uid, name
    and backing image (so its backup-url too), as when many images are restored."""
    image = "image-7" if index is None else f"image-{index}"
    uid = "705ab4f5-6393-11e8-b7cc-42010a800002" if index is None else f"705ab4f5-{index:012d}"
    obj = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackingImage",
        "metadata": {
            "name": f"{image}-restore",
            "namespace": NS,
            "uid": "0b4f7c1e-3d55-4f4e-9a51-6c0f1f1a2b3c",
            "generation": 1,
            "creationTimestamp": "2026-11-26T07:00:00Z",
            "labels": {"app.kubernetes.io/part-of": "images", "team": "storage"},
            "annotations": {
                "kubectl.kubernetes.io/last-applied-configuration": json.dumps(
                    {"apiVersion": "longhorn.io/v1beta2", "kind": "BackingImage"}
                )
            },
            "managedFields": [
                {
                    "apiVersion": "longhorn.io/v1beta2",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:spec": {
                            ".": {},
                            "f:checksum": {},
                            "f:sourceParameters": {".": {}, "f:backup-url": {}},
                            "f:sourceType": {},
                        }
                    },
                    "manager": "kubectl-client-side-apply",
                    "operation": "Update",
                    "time": "2026-11-26T07:00:00Z",
                }
            ],
        },
        "spec": {
            "sourceType": "restore",
            "sourceParameters": {
                "backup-url": f"{TARGET}?backingImage={image}",
                "concurrent-limit": "2",
                "backup-target-name": "default",
            },
            "checksum": CHECKSUM,
            "minNumberOfCopies": 1,
        },
    }
    kind = {"group": "longhorn.io", "version": "v1beta2", "kind": "BackingImage"}
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": kind,
            "resource": {"group": "longhorn.io", "version": "v1beta2", "resource": "backingimages"},
            "requestKind": kind,
            "requestResource": {
                "group": "longhorn.io",
                "version": "v1beta2",
                "resource": "backingimages",
            },
            "name": f"{image}-restore",
            "namespace": NS,
            "operation": "CREATE",
            "userInfo": {
                "username": "admin",
                "uid": "014fbff9a07c",
                "groups": ["system:authenticated", "my-admin-group"],
            },
            "object": obj,
            "oldObject": None,
            "dryRun": False,
            "options": {
                "apiVersion": "meta.k8s.io/v1",
                "kind": "CreateOptions",
                "fieldManager": "kubectl-client-side-apply",
            },
        },
    }


def _cluster_objects() -> list[dict[str, Any]]:
    def meta(name: str) -> dict[str, Any]:
        return {"name": name, "namespace": NS}

    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackupTarget",
            "metadata": meta("default"),
            "spec": {"backupTargetURL": TARGET, "credentialSecret": "s3", "pollInterval": "300s"},
            "status": {"available": True},
        }
    ]
    for i in range(20):
        objects.append(
            {
                "apiVersion": "longhorn.io/v1beta2",
                "kind": "BackingImage",
                "metadata": meta(f"image-{i}"),
                "spec": {"sourceType": "download", "sourceParameters": {"url": "https://x/i"}},
                "status": {"checksum": CHECKSUM, "diskFileStatusMap": {"d": {"state": "ready"}}},
            }
        )
        objects.append(
            {
                "apiVersion": "longhorn.io/v1beta2",
                "kind": "BackupBackingImage",
                "metadata": meta(f"image-{i}"),
                "spec": {"userCreated": True, "backingImage": f"image-{i}"},
                "status": {
                    "state": "Completed",
                    "url": f"{TARGET}?backingImage=image-{i}",
                    "checksum": CHECKSUM,
                },
            }
        )
    return objects


async def ceiling_handler(request: Any) -> Any:
    """The ceiling's handler: parse the review, answer a constant allow."""
    from aiohttp import web

    body = json.loads(await request.read())
    answer = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": body["request"]["uid"], "allowed": True},
    }
    return web.Response(body=json.dumps(answer).encode(), content_type="application/json")


def _bare_server(cert: str, key: str) -> None:
    """The ceiling: parse the review, answer a constant allow (same TLS setup)."""
    import asyncio

    from aiohttp import web

    from longhorn_bi.webhook.tls import ReloadingTLS

    async def run() -> None:
        app = web.Application()
        app.router.add_post("/validate", ceiling_handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        tls = ReloadingTLS(Path(cert), Path(key))
        await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.context).start()
        print(runner.addresses[0][1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(run())


DISTINCT = 4096


def make_certs(work: Path) -> Path:
    """ca.crt, tls.crt and tls.key for 127.0.0.1 in `work`, by `longhorn-bi-webhook certs`."""
    subprocess.run(
        [
            str(Path(sys.executable).parent / "longhorn-bi-webhook"),
            "certs",
            "--service",
            "bench",
            "--namespace",
            NS,
            "--out",
            str(work),
            "--extra-name",
            "127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    return work


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _write_lines(path: Path, count: int) -> Path:
    with path.open("w") as out:
        for index in range(count):
            out.write(json.dumps(admission_review(index)) + "\n")
    return path


def _pinned(command: list[str], core: int) -> list[str]:
    return ["taskset", "-c", str(core), *command] if shutil.which("taskset") else command


def _wait_port(port: int) -> None:
    for _ in range(500):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _to_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), robust to other load."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wrk(
    port: int, script: Path, connections: int, seconds: int, pid: int
) -> tuple[float, float, int, float]:
    """(requests/s, p99 ms, failed requests, server CPU microseconds per request)."""
    cpu_before = _cpu_seconds(pid)
    out = subprocess.run(
        _pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                f"https://127.0.0.1:{port}/validate",
            ],
            1,
        ),
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = _cpu_seconds(pid) - cpu_before
    total = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = _to_ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: .*", out)
    failures = int(bad.group(1)) if bad else 0
    if errors:
        failures += sum(int(n) for n in re.findall(r"\d+", errors.group(0)))
    return rps, p99, failures, cpu * 1e6 / max(total, 1)


def _check_answer(port: int, ca: Path, review: bytes) -> dict[str, Any]:
    context = ssl.create_default_context(cafile=str(ca))
    request = urllib.request.Request(
        f"https://127.0.0.1:{port}/validate",
        data=review,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as resp:
        answer: dict[str, Any] = json.loads(resp.read())["response"]
    return answer


def _compare(
    mode: str,
    script: Path,
    size: int,
    args: argparse.Namespace,
    bare: subprocess.Popen[bytes],
    bare_port: int,
    webhook: subprocess.Popen[bytes],
    port: int,
) -> None:
    """wrk at concurrency 16 and 64 against both servers in turn; the medians of each."""
    # The machine is shared: alternate the two servers and keep the median of each.
    for connections in (16, 64):
        runs: dict[str, list[tuple[float, float, int, float]]] = {"ceiling": [], "webhook": []}
        servers = (("ceiling", bare_port, bare.pid), ("webhook", port, webhook.pid))
        for _ in range(args.rounds):
            for name, target, pid in servers:
                run = _wrk(target, script, connections, args.seconds, pid)
                runs[name].append(run)
                result(
                    f"webhook_tls_{name}",
                    bodies=mode,
                    concurrency=connections,
                    seconds=args.seconds,
                    body_bytes=size,
                    rps=round(run[0]),
                    p99_ms=round(run[1], 2),
                    failed=run[2],
                    server_cpu_us_per_request=round(run[3], 1),
                )
        ceiling_rps = statistics.median(r[0] for r in runs["ceiling"])
        webhook_rps = statistics.median(r[0] for r in runs["webhook"])
        result(
            "webhook_tls_median",
            bodies=mode,
            concurrency=connections,
            rounds=args.rounds,
            ceiling_rps=round(ceiling_rps),
            webhook_rps=round(webhook_rps),
            ratio=round(webhook_rps / ceiling_rps, 2),
            target_ratio=">=0.7",
            webhook_p99_ms=round(statistics.median(r[1] for r in runs["webhook"]), 2),
            ceiling_p99_ms=round(statistics.median(r[1] for r in runs["ceiling"]), 2),
            cpu_ratio=round(
                statistics.median(r[3] for r in runs["ceiling"])
                / statistics.median(r[3] for r in runs["webhook"]),
                2,
            ),
            target_p99="<=20ms" if connections == 16 else "-",
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--bodies",
        choices=["same", "distinct", "both"],
        default="both",
        help=f"one review posted again and again, {DISTINCT} distinct ones in turn, or both",
    )
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])
    if shutil.which("wrk") is None:
        print("bench_webhook skipped: wrk is not installed (apt-get install -y wrk)")
        return

    from tests.fakekube import FakeKubeServer, write_kubeconfig
    from tests.support import crd_file, volume_crd_file

    work = Path(tempfile.mkdtemp(prefix="bench-webhook-"))
    make_certs(work)
    review = json.dumps(admission_review()).encode()
    (work / "review.json").write_bytes(review)
    scripts = {
        "same": _write(
            work / "same.lua",
            'wrk.method = "POST"\n'
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.body = io.open("{work / "review.json"}", "rb"):read("*a")\n',
        ),
        # More distinct reviews than any memo of ours holds (1024 backup URLs), in turn.
        "distinct": _write(
            work / "distinct.lua",
            # In init: wrk sets the Host header just before calling it.
            'wrk.headers["Content-Type"] = "application/json"\n'
            "local requests = {}\n"
            "init = function(args)\n"
            f'  for line in io.lines("{_write_lines(work / "reviews.jsonl", DISTINCT)}") do\n'
            '    requests[#requests + 1] = wrk.format("POST", nil, nil, line)\n'
            "  end\n"
            "end\n"
            "local i = 0\n"
            "request = function()\n"
            "  i = i % #requests + 1\n"
            "  return requests[i]\n"
            "end\n",
        ),
    }
    processes: list[subprocess.Popen[bytes]] = []
    with FakeKubeServer(crds=(crd_file("1.12"), volume_crd_file("1.12"))) as fake:
        for obj in _cluster_objects():
            fake.put(obj)
        kubeconfig = write_kubeconfig(work / "kubeconfig", fake.url)
        try:
            metrics_port, port = _free_port(), _free_port()
            webhook = subprocess.Popen(
                _pinned(
                    [
                        str(Path(sys.executable).parent / "longhorn-bi-webhook"),
                        "serve",
                        "--host=127.0.0.1",
                        f"--port={port}",
                        f"--metrics-port={metrics_port}",
                        f"--cert-file={work / 'tls.crt'}",
                        f"--key-file={work / 'tls.key'}",
                        f"--kubeconfig={kubeconfig}",
                        "--shutdown-delay-seconds=0",
                    ],
                    0,
                ),
                stderr=(work / "webhook.log").open("wb"),
            )
            processes.append(webhook)
            bare = subprocess.Popen(
                _pinned(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.bench_webhook",
                        "--bare-server",
                        str(work / "tls.crt"),
                        str(work / "tls.key"),
                    ],
                    0,
                ),
                stdout=subprocess.PIPE,
            )
            processes.append(bare)
            assert bare.stdout is not None
            bare_port = int(bare.stdout.readline())
            _wait_port(metrics_port)
            while True:
                try:
                    with urllib.request.urlopen(
                        f"http://127.0.0.1:{metrics_port}/readyz", timeout=5
                    ) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.05)
            for body in (review, json.dumps(admission_review(DISTINCT - 1)).encode()):
                answer = _check_answer(port, work / "ca.crt", body)
                assert answer.get("allowed") is True and "warnings" not in answer, answer
            denied = json.loads(review)
            denied["request"]["object"]["spec"]["sourceParameters"]["concurrent-limit"] = "0"
            assert not _check_answer(port, work / "ca.crt", json.dumps(denied).encode())["allowed"]

            modes = ["same", "distinct"] if args.bodies == "both" else [args.bodies]
            for mode in modes:
                _compare(mode, scripts[mode], len(review), args, bare, bare_port, webhook, port)
        finally:
            for proc in processes:
                proc.terminate()
                proc.wait(30)
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--bare-server":
        _bare_server(sys.argv[2], sys.argv[3])
    else:
        main()
