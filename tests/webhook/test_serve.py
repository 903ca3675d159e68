"""`longhorn-bi-webhook` as a real process: serve with the fake API server, SIGTERM drain,
flags from the environment, --help of every subcommand."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from longhorn_bi.engine.scrub.outcome import OK_METRIC, TIME_METRIC, VERIFIED_AT, VERIFY_RESULT
from tests.fakekube import FakeKubeServer
from tests.plugin_cluster.scrub_support import Store, backup_object, target_object
from tests.support import run_cli
from tests.webhook.helpers import NS, backup, client_context, review

EXE = [sys.executable, "-m", "longhorn_bi.webhook.cli"]


class Server:
    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        serving = self.wait_for("serving")
        self.port = int(serving["port"])
        self.metrics_port = int(serving["metrics_port"])

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                self.lines.put(json.loads(line))
            except ValueError:
                self.lines.put({"msg": "non-json", "line": line})

    def wait_for(self, msg: str) -> dict[str, Any]:
        while True:
            try:
                record = self.lines.get(timeout=60)
            except queue.Empty:
                raise AssertionError(f"no {msg!r} log line; saw {self.seen}") from None
            self.seen.append(record)
            if record.get("msg") == msg:
                return record
            if self.proc.poll() is not None and self.lines.empty():
                raise AssertionError(f"server exited {self.proc.returncode}: {self.seen}")

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}{path}", timeout=10
            ) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()


@pytest.fixture
def server(fake_kube: FakeKubeServer, fake_kubeconfig: Path, certs: Path) -> Iterator[Server]:
    env = {
        **os.environ,
        # Flags from the environment, as the chart passes some of them.
        "LONGHORN_BI_WEBHOOK_CERT_FILE": str(certs / "tls.crt"),
        "LONGHORN_BI_WEBHOOK_KEY_FILE": str(certs / "tls.key"),
        "LONGHORN_BI_WEBHOOK_LONGHORN_NAMESPACE": NS,
    }
    proc = subprocess.Popen(
        [
            *EXE,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--kubeconfig",
            str(fake_kubeconfig),
            "--log-level",
            "debug",
            "--drain-seconds",
            "60",
            "--shutdown-delay-seconds",
            "0",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    server = None
    try:
        server = Server(proc)
        yield server
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        if server is not None:
            server.reader.join(30)
        assert proc.stderr is not None
        proc.stderr.close()


def _https_request(port: int, ca: Path, body: bytes, head_only: int | None = None) -> socket.socket:
    """A TLS socket that sent the request line, headers and the first `head_only` body bytes."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    tls = client_context(ca).wrap_socket(raw, server_hostname="127.0.0.1")
    head = (
        f"POST /validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    tls.sendall(head + body[: len(body) if head_only is None else head_only])
    return tls


def _read_response(tls: socket.socket) -> tuple[int, dict[str, Any]]:
    data = b""
    while chunk := tls.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_serve_reviews_with_live_facts_and_drains_on_sigterm(
    server: Server, fake_kube: FakeKubeServer, certs: Path
) -> None:
    while server.get("/readyz")[0] != 200:
        server.wait_for("listed")
    assert server.get("/healthz") == (200, "ok\n")

    body = json.dumps(review(backup("ghost"), uid="proc-1")).encode()
    with _https_request(server.port, certs / "ca.crt", body) as tls:
        status, answer = _read_response(tls)
    assert status == 200
    assert answer["response"]["uid"] == "proc-1"
    assert "[LHB402]" in answer["response"]["status"]["message"]
    logged = server.wait_for("review")
    assert logged["uid"] == "proc-1"
    assert logged["verdict"] == "denied"

    metrics = server.get("/metrics")[1]
    assert 'verdict="denied"} 1.0' in metrics
    assert 'longhorn_bi_webhook_cache_synced{resource="backingimages"} 1.0' in metrics

    # A review in flight when SIGTERM arrives still gets its answer.
    body = json.dumps(review(backup("ghost"), uid="proc-2")).encode()
    pending = _https_request(server.port, certs / "ca.crt", body, head_only=10)
    while "longhorn_bi_webhook_reviews_in_flight 1.0" not in server.get("/metrics")[1]:
        time.sleep(0.01)  # until the server has the headers and waits for the body
    server.proc.send_signal(signal.SIGTERM)
    server.wait_for("stopping: draining reviews in flight")
    assert server.get("/readyz") == (503, "stopping\n")
    pending.sendall(body[10:])
    with pending:
        status, answer = _read_response(pending)
    assert status == 200
    assert answer["response"]["uid"] == "proc-2"
    server.wait_for("stopped")
    assert server.proc.wait(30) == 0


def test_sigterm_stops_within_the_grace_period_despite_hostile_connections(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path, certs: Path
) -> None:
    drain, delay = 2, 0
    proc = subprocess.Popen(
        [
            *EXE,
            "serve",
            "--host=127.0.0.1",
            "--port=0",
            "--metrics-port=0",
            f"--kubeconfig={fake_kubeconfig}",
            f"--cert-file={certs / 'tls.crt'}",
            f"--key-file={certs / 'tls.key'}",
            f"--drain-seconds={drain}",
            f"--shutdown-delay-seconds={delay}",
            "--log-level=debug",
        ],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    server = Server(proc)
    held: list[socket.socket] = []
    try:
        while server.get("/readyz")[0] != 200:
            server.wait_for("listed")
        body = json.dumps(review(backup("ghost"))).encode()
        # A review whose body never completes, a TCP connection that never starts TLS.
        held.append(_https_request(server.port, certs / "ca.crt", body, head_only=10))
        held.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
        while "longhorn_bi_webhook_reviews_in_flight 1.0" not in server.get("/metrics")[1]:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        # The chart's terminationGracePeriodSeconds: shutdown delay + drain + 10 s.
        assert proc.wait(delay + drain + 10) == 0
    finally:
        for sock in held:
            sock.close()
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        server.reader.join(30)
        assert proc.stderr is not None
        proc.stderr.close()


def test_serve_refuses_bad_flags_cleanly(certs: Path, tmp_path: Path) -> None:
    cases = [
        (["--longhorn-version", "1.5"], "--longhorn-version"),
        (["--port", "70000"], "--port"),
        (["--kubeconfig", str(tmp_path / "missing")], "--kubeconfig"),
    ]
    for extra, flag in cases:
        result = subprocess.run(
            [
                *EXE,
                "serve",
                "--cert-file",
                str(certs / "tls.crt"),
                "--key-file",
                str(certs / "tls.key"),
                *extra,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert flag in result.stderr
        assert "Traceback" not in result.stderr
    bad = tmp_path / "bad.crt"
    bad.write_text("nope")
    result = subprocess.run(
        [*EXE, "serve", "--cert-file", str(bad), "--key-file", str(certs / "tls.key")],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "error: --cert-file/--key-file: cannot load" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["certs", "--help"]])
def test_help(args: list[str]) -> None:
    result = subprocess.run([*EXE, *args], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    assert "Usage: longhorn-bi-webhook" in result.stdout
    if args[0] == "serve":
        assert "LONGHORN_BI_WEBHOOK_CERT_FILE" in result.stdout


def test_exempt_accounts_come_from_a_space_separated_variable(
    certs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from longhorn_bi.webhook.cli import serve

    # As the chart passes webhook.exemptAccounts.
    monkeypatch.setenv(
        "LONGHORN_BI_WEBHOOK_EXEMPT_ACCOUNTS",
        "longhorn-service-account system:serviceaccount:argocd:argocd-application-controller",
    )
    args = ["--cert-file", str(certs / "tls.crt"), "--key-file", str(certs / "tls.key")]
    ctx = serve.make_context("serve", args)
    assert ctx.params["exempt_accounts"] == (
        "longhorn-service-account",
        "system:serviceaccount:argocd:argocd-application-controller",
    )
    assert ctx.params["max_connections"] == 64


def _verify_series(text: str) -> dict[tuple[str, str], float]:
    """(metric, backup) -> value of the verify series in a /metrics page."""
    found = {}
    for metric, labels, value in re.findall(
        r"^(longhorn_bi_backup_verify_\w+)\{([^}]*)\} (\S+)$", text, re.M
    ):
        pairs = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        assert pairs["namespace"] == NS
        found[metric, pairs["backup"]] = float(value)
    return found


def _metrics_until(server: Server, done: Callable[[dict[tuple[str, str], float]], bool]) -> Any:
    """The verify series once `done` holds: the cache follows the watch (never a timing)."""
    deadline = time.monotonic() + 60
    while not done(series := _verify_series(server.get("/metrics")[1])):
        assert time.monotonic() < deadline, f"the verify series stayed {series}"
        time.sleep(0.05)
    return series


def test_metrics_show_the_last_verify_result_per_backup(
    server: Server, fake_kube: FakeKubeServer, fake_kubeconfig: Path, tmp_path: Path
) -> None:
    """`verify` writes its annotations; the webhook's watch brings them to /metrics."""
    store = Store(f"vfs://{tmp_path / 'store'}", tmp_path / "store")
    fake_kube.put(target_object("local", store.target))
    for name, seed in (("sound", 1), ("misnamed", 2)):
        url, checksum, size = store.backup(tmp_path, name, blocks=1, seed=seed)
        recorded = checksum if name == "sound" else "0" * 128
        fake_kube.put(backup_object(name, url, recorded, target="local", size=size))
    unverified = backup_object("unverified", "", "", state="InProgress", target="local")
    fake_kube.put(unverified)
    before = time.time()

    result = run_cli("verify", "--all", "--kubeconfig", str(fake_kubeconfig))
    assert result.returncode == 1, result.stderr  # misnamed fails

    series = _metrics_until(server, lambda s: len(s) == 4)
    assert series[OK_METRIC, "sound"] == 1.0
    assert series[OK_METRIC, "misnamed"] == 0.0
    assert before - 1 <= series[TIME_METRIC, "sound"] <= time.time()
    assert (OK_METRIC, "unverified") not in series  # never verified: no series

    # A later result (here written by hand, as another verify run would) replaces it.
    obj = fake_kube.get("backupbackingimages", NS, "misnamed")
    assert obj is not None
    obj["metadata"]["annotations"] = {VERIFIED_AT: "2030-01-02T03:04:05Z", VERIFY_RESULT: "ok"}
    fake_kube.put(obj)
    series = _metrics_until(server, lambda s: s.get((OK_METRIC, "misnamed")) == 1.0)
    assert series[TIME_METRIC, "misnamed"] == 1893553445.0
    fake_kube.delete("backupbackingimages", NS, "sound")
    _metrics_until(server, lambda s: (OK_METRIC, "sound") not in s)
