"""kubectl's connection flags: --kubeconfig, $KUBECONFIG, --context, -n, --request-timeout."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import yaml

from tests.fakekube import write_kubeconfig
from tests.plugin_cluster.conftest import Cluster, backup
from tests.support import run_cli


def test_kubeconfig_env_is_honoured(cluster: Cluster, tmp_path: Path):
    cluster.seed(backup("bi1-backup", "bi1"))
    elsewhere = write_kubeconfig(tmp_path / "dead", "http://127.0.0.1:9")
    # $KUBECONFIG may list several files; kubectl merges them, the first current-context wins.
    env = {"KUBECONFIG": f"{cluster.kubeconfig}:{elsewhere}"}
    result = run_cli("list", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1].startswith("bi1-backup ")


def test_context_picks_the_cluster(cluster: Cluster, tmp_path: Path):
    cluster.seed(backup("bi1-backup", "bi1"))
    config = yaml.safe_load(cluster.kubeconfig.read_text())
    config["clusters"].append({"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}})
    config["contexts"].append({"name": "dead", "context": {"cluster": "dead", "user": "fake"}})
    config["current-context"] = "dead"
    both = tmp_path / "two-contexts"
    both.write_text(yaml.safe_dump(config))
    result = run_cli("list", "--kubeconfig", str(both), "--context", "fake")
    assert result.returncode == 0, result.stderr
    assert "bi1-backup" in result.stdout
    result = run_cli("list", "--kubeconfig", str(both))
    assert result.returncode == 1
    assert "cannot reach the API server at http://127.0.0.1:9" in result.stderr
    result = run_cli("list", "--kubeconfig", str(both), "--context", "nope")
    assert result.returncode == 1
    assert "cannot use the kubeconfig" in result.stderr
    assert "context 'nope'" in result.stderr


def test_a_missing_kubeconfig_is_one_clear_error(tmp_path: Path):
    result = run_cli("list", "--kubeconfig", str(tmp_path / "nope"))
    assert result.returncode == 1
    assert f"error: --kubeconfig {tmp_path / 'nope'} does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    result = run_cli("list", env={"KUBECONFIG": str(tmp_path / "nope2")})
    assert result.returncode == 1
    assert f"error: the kubeconfig {tmp_path / 'nope2'} does not exist" in result.stderr


def test_namespace_flag_reaches_the_request_path(cluster: Cluster):
    result = cluster.cli("list", "-n", "storage")
    assert result.returncode == 0
    paths = [p for _, p, _ in cluster.server.requests]
    assert paths == ["/apis/longhorn.io/v1beta2/namespaces/storage/backupbackingimages"]


def test_request_timeout_bounds_one_request(tmp_path: Path):
    # A server that accepts the connection and never answers.
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        port = server.getsockname()[1]
        accepted: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            server.settimeout(0.1)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    continue

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
        result = run_cli("list", "--kubeconfig", str(kubeconfig), "--request-timeout", "1s")
        stop.set()
        thread.join(10)
        for conn in accepted:
            conn.close()
    assert result.returncode == 1
    assert f"the API server at http://127.0.0.1:{port} did not answer" in result.stderr
    assert "raise --request-timeout" in result.stderr


def test_bad_durations_are_usage_errors():
    result = run_cli("list", "--request-timeout", "soon")
    assert result.returncode == 2
    assert "'soon' is not a duration" in result.stderr
    result = run_cli("backup", "bi1", "--apply", "--wait", "--timeout", "1x")
    assert result.returncode == 2
    assert "--timeout" in result.stderr
