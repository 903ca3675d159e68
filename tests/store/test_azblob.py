"""The azblob:// driver: Longhorn's URL forms and variables, TLS with AZBLOB_CERT, the CLI.

What every driver must do is in test_driver_contract.py; this is what only Azure has.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from longhorn_bi.engine.backup_url import parse_target
from longhorn_bi.engine.errors import BackupstoreError, InvalidInput
from longhorn_bi.engine.store.admin import list_backups
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.drivers.azblob import AzureBlobStore, blob_prefix, service_url
from longhorn_bi.engine.store.restore import restore_backup
from tests.store.azurite_server import (
    ACCOUNT,
    ACCOUNT_KEY,
    azure_env,
    create_container,
    running_azurite,
)
from tests.store.reference_store import BLOCK, make_sparse_file
from tests.webhook.conftest import make_certs

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")


def _image(tmp_path: Path, blocks: int = 3) -> tuple[Path, bytes]:
    chunks = {i * BLOCK: os.urandom(BLOCK) for i in range(blocks) if i != 1}
    path = tmp_path / "image.raw"
    return path, make_sparse_file(path, blocks * BLOCK, chunks)


@pytest.mark.parametrize(
    ("url", "endpoint", "expected"),
    [
        ("azblob://c0ntainer@core.windows.net/p/", "", "https://acct.blob.core.windows.net/"),
        (
            "azblob://c0ntainer@core.chinacloudapi.cn/",
            "",
            "https://acct.blob.core.chinacloudapi.cn/",
        ),
        # AZBLOB_ENDPOINT wins, path-style, its trailing '/' trimmed (azblob_service.go)
        (
            "azblob://c0ntainer@core.windows.net/p/",
            "http://10.0.0.1:10000/",
            "http://10.0.0.1:10000/acct/",
        ),
        ("azblob://c0ntainer/p", "https://azs.local", "https://azs.local/acct/"),
    ],
)
def test_service_url_is_what_longhorns_connection_string_resolves_to(
    url: str, endpoint: str, expected: str
) -> None:
    assert service_url(parse_target(url), "acct", endpoint) == expected


def test_an_endpoint_without_scheme_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"AZBLOB_ENDPOINT '127\.0\.0\.1:10000' is not an http"):
        service_url(parse_target("azblob://c0ntainer/p"), "acct", "127.0.0.1:10000")


def test_no_suffix_and_no_endpoint_is_refused() -> None:
    # Longhorn would ask https://acct.blob./ here (EndpointSuffix= is set, empty).
    with pytest.raises(InvalidInput, match="AZBLOB_ENDPOINT is unset"):
        service_url(parse_target("azblob://c0ntainer/p"), "acct", "")


@pytest.mark.parametrize(
    ("path", "prefix"),
    [("/", ""), ("/a/b/", "a/b"), ("/a//b", "a/b"), ("//a//b//", "a/b")],
)
def test_blob_names_are_joined_as_filepath_join_does(path: str, prefix: str) -> None:
    assert blob_prefix(parse_target(f"azblob://c0ntainer@core.windows.net{path}")) == prefix


def test_credentials_are_required_both(monkeypatch) -> None:
    monkeypatch.setenv("AZBLOB_ACCOUNT_NAME", ACCOUNT)
    monkeypatch.delenv("AZBLOB_ACCOUNT_KEY", raising=False)
    with pytest.raises(InvalidInput, match="both AZBLOB_ACCOUNT_NAME and AZBLOB_ACCOUNT_KEY"):
        open_store("azblob://c0ntainer@core.windows.net/")


def test_a_key_that_is_not_base64_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("AZBLOB_ACCOUNT_NAME", ACCOUNT)
    monkeypatch.setenv("AZBLOB_ACCOUNT_KEY", "not base64!")
    with pytest.raises(InvalidInput, match="AZBLOB_ACCOUNT_KEY is not base64"):
        open_store("azblob://c0ntainer@core.windows.net/")


def test_a_cert_that_is_not_pem_is_refused(monkeypatch) -> None:
    monkeypatch.setenv("AZBLOB_ACCOUNT_NAME", ACCOUNT)
    monkeypatch.setenv("AZBLOB_ACCOUNT_KEY", ACCOUNT_KEY)
    monkeypatch.setenv("AZBLOB_CERT", "/etc/ssl/certs/ca.pem")
    with pytest.raises(InvalidInput, match="AZBLOB_CERT holds no valid PEM certificate"):
        open_store("azblob://c0ntainer@core.windows.net/")


def test_the_form_without_suffix_works_with_an_endpoint(
    azblob_container, tmp_path, fast_locks
) -> None:
    image, content = _image(tmp_path)
    target = f"azblob://{azblob_container}/deep//store/"
    result = backup_image(image, target, "parrot", lock_timings=fast_locks)
    store = open_store(target)
    assert isinstance(store, AzureBlobStore)
    names = store.container.list_blob_names()
    assert all(name.startswith("deep/store/backupstore/") for name in names)
    out = tmp_path / "out.raw"
    restore_backup(result.url, out, lock_timings=fast_locks)
    assert out.read_bytes() == content


def test_a_missing_container_is_a_clear_error(azblob_container) -> None:
    with pytest.raises(BackupstoreError, match="container 'no-such-container' does not exist"):
        list_backups("azblob://no-such-container@core.windows.net/")


@pytest.fixture(scope="module")
def azurite_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """Azurite over HTTPS with a certificate of our own CA: (endpoint, CA PEM)."""
    certs = make_certs(tmp_path_factory.mktemp("azurite-certs"))
    work = tmp_path_factory.mktemp("azurite-tls")
    tls = ("--cert", str(certs / "tls.crt"), "--key", str(certs / "tls.key"))
    with running_azurite(work, *tls) as endpoint:
        yield endpoint, (certs / "ca.crt").read_text()


def test_https_with_azblob_cert(azurite_tls, tmp_path, monkeypatch, fast_locks) -> None:
    endpoint, ca_pem = azurite_tls
    assert endpoint.startswith("https://")
    ca_file = tmp_path / "ca.crt"
    ca_file.write_text(ca_pem)
    container = create_container(endpoint, str(ca_file))
    for var, value in azure_env(endpoint).items():
        monkeypatch.setenv(var, value)
    monkeypatch.delenv("AZBLOB_CERT", raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    target = f"azblob://{container}@core.windows.net/"
    with pytest.raises(BackupstoreError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify"):
        list_backups(target)
    monkeypatch.setenv("AZBLOB_CERT", ca_pem)
    image, content = _image(tmp_path)
    result = backup_image(image, target, "parrot", lock_timings=fast_locks)
    store = open_store(target)
    assert isinstance(store, AzureBlobStore)
    bundle = store._cert_file
    assert bundle is not None and ca_pem.strip() in Path(bundle).read_text()
    store.close()
    assert not Path(bundle).exists()
    out = tmp_path / "out.raw"
    restore_backup(result.url, out, lock_timings=fast_locks)
    assert out.read_bytes() == content


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_every_store_verb_on_azure(azblob_container, tmp_path) -> None:
    image, content = _image(tmp_path)
    target = f"azblob://{azblob_container}@core.windows.net/cli/"
    env = dict(os.environ)
    done = _cli(
        "store", "backup", str(image), "--target", target, "--name", "parrot", "-o", "json", env=env
    )
    assert done.returncode == 0, done.stderr
    url = json.loads(done.stdout)["url"]
    assert url == f"{target}?backingImage=parrot"
    listed = _cli("store", "ls", target, "-o", "json", env=env)
    assert listed.returncode == 0 and "parrot" in listed.stdout
    assert _cli("store", "inspect", url, env=env).returncode == 0
    assert _cli("store", "verify", url, env=env).returncode == 0
    out = tmp_path / "out.raw"
    restored = _cli("store", "restore", url, "--output", str(out), env=env)
    assert restored.returncode == 0, restored.stderr
    assert out.read_bytes() == content
    removed = _cli("store", "rm", url, "-o", "json", env=env)
    assert removed.returncode == 0 and json.loads(removed.stdout)["deletedBlocks"] == 2
    wrong = {**env, "AZBLOB_ACCOUNT_KEY": "d3Jvbmcta2V5LXRoYXQtaXMtbm90LWl0"}
    refused = _cli("store", "ls", target, env=wrong)
    assert refused.returncode == 1
    assert "refused the credentials" in refused.stderr and "AZBLOB_ACCOUNT_KEY" in refused.stderr
    half = {k: v for k, v in env.items() if k != "AZBLOB_ACCOUNT_KEY"}
    assert _cli("store", "ls", target, env=half).returncode == 2
    for run in (done, listed, restored, removed, refused):
        for value in (ACCOUNT_KEY, ACCOUNT, wrong["AZBLOB_ACCOUNT_KEY"]):
            assert value not in run.stdout and value not in run.stderr
