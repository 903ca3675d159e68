"""A verify worker in its pod: the service account's token and CA, over real TLS.

The fake API server serves HTTPS with a certificate from a CA made for the test and accepts
only the token it is given; the worker finds both through KUBERNETES_SERVICE_HOST/PORT and
the service account folder, as in a pod of the verify Job.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from longhorn_bi.engine.errors import ClusterError
from longhorn_bi.engine.scrub.outcome import VERIFY_RESULT
from longhorn_bi.plugin.in_pod import DIR_ENV, HOST_ENV, PORT_ENV, ServiceAccount
from longhorn_bi.plugin.kube import Connection, Kube
from tests.fakekube import FakeKubeServer, crd_file
from tests.plugin_cluster.conftest import NS
from tests.plugin_cluster.scrub_support import Store, backup_object, notes_of, target_object
from tests.support import run_cli
from tests.webhook.conftest import make_certs


@pytest.fixture
def pki(tmp_path: Path) -> Path:
    return make_certs(tmp_path / "pki")  # ca.crt, and tls.crt/tls.key for 127.0.0.1


@pytest.fixture
def server(pki: Path) -> Iterator[FakeKubeServer]:
    tls = (pki / "tls.crt", pki / "tls.key")
    with FakeKubeServer(crd_file("1.12"), token="token-one", tls=tls) as srv:
        yield srv


def service_account(folder: Path, token: str, ca: Path) -> ServiceAccount:
    folder.mkdir(exist_ok=True)
    write_token(folder / "token", token)
    shutil.copyfile(ca, folder / "ca.crt")
    return ServiceAccount(folder)


def write_token(path: Path, token: str) -> None:
    """As the kubelet rotates a projected token: a new file swapped in at once."""
    fresh = path.with_suffix(".new")
    fresh.write_text(token)
    os.replace(fresh, path)


def pod_env(server: FakeKubeServer, account: ServiceAccount) -> dict[str, str]:
    port = server.url.rsplit(":", 1)[1]
    return {
        HOST_ENV: "127.0.0.1",
        PORT_ENV: port,
        DIR_ENV: str(account.directory),
        "JOB_COMPLETION_INDEX": "0",
    }


def test_the_worker_verifies_with_the_pods_token_and_ca(
    server: FakeKubeServer, pki: Path, tmp_path: Path
) -> None:
    store = Store(f"vfs://{tmp_path / 'store'}", tmp_path / "store")
    url, checksum, size = store.backup(tmp_path, "podded")
    server.put(target_object("local", store.target))
    server.put(backup_object("podded", url, checksum, target="local", size=size))
    account = service_account(tmp_path / "sa", "token-one", pki / "ca.crt")

    # What the Job's pod runs: no --kubeconfig, the service account found by the environment.
    result = run_cli("verify", "--all", "-n", NS, env=pod_env(server, account))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok      podded")
    # The server refuses any request without the token (401), so each one carried it.
    assert notes_of(server, "podded")[VERIFY_RESULT] == "ok"
    methods = {method for method, path, _ in server.requests if "backupbackingimages" in path}
    assert methods == {"GET", "PATCH"}


def test_a_wrong_token_is_refused_by_name(
    server: FakeKubeServer, pki: Path, tmp_path: Path
) -> None:
    account = service_account(tmp_path / "sa", "not-the-token", pki / "ca.crt")
    result = run_cli("verify", "--all", "-n", NS, env=pod_env(server, account))
    assert result.returncode == 1
    assert "unauthorized" in result.stderr and "did not accept the credentials" in result.stderr
    assert "the pod's service account token was refused" in result.stderr


def test_a_ca_that_did_not_sign_the_servers_certificate_fails_clearly(
    server: FakeKubeServer, tmp_path: Path
) -> None:
    other = make_certs(tmp_path / "other-pki")
    account = service_account(tmp_path / "sa", "token-one", other / "ca.crt")
    result = run_cli("verify", "--all", "-n", NS, env=pod_env(server, account))
    assert result.returncode == 1, result.stderr
    assert "cannot verify the API server's certificate at https://127.0.0.1:" in result.stderr
    assert "CERTIFICATE_VERIFY_FAILED" in result.stderr
    assert f"the pod's CA file {account.ca_file}" in result.stderr
    assert not server.requests  # the handshake failed: no request was ever read


def test_missing_service_host_or_files_are_named(tmp_path: Path) -> None:
    account = ServiceAccount(tmp_path / "sa")
    (tmp_path / "sa").mkdir()
    (tmp_path / "sa" / "token").write_text("t")  # a token but no ca.crt
    env = {HOST_ENV: "127.0.0.1", PORT_ENV: "1", DIR_ENV: str(account.directory)}
    result = run_cli("verify", "--all", env=env)
    assert result.returncode == 1
    assert f"cannot use the pod's service account in {account.directory}" in result.stderr
    assert "certification file does not exist" in result.stderr


def test_a_rotated_token_is_read_again(
    server: FakeKubeServer, pki: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    account = service_account(tmp_path / "sa", "token-one", pki / "ca.crt")
    for key, value in pod_env(server, account).items():
        monkeypatch.setenv(key, value)
    kube = Kube(Connection(namespace=NS, pod_account=account))
    assert kube.list("backupbackingimages") == []

    server.token = "token-two"  # the API server now wants the new token ...
    with pytest.raises(ClusterError, match="unauthorized"):
        kube.list("backupbackingimages")  # ... which the file does not hold yet
    write_token(account.token_file, "token-two")
    assert kube.list("backupbackingimages") == []  # the same client, the file read again
    assert kube.host == f"https://127.0.0.1:{server.url.rsplit(':', 1)[1]}"
