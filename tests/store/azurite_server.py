"""Azure Blob for the tests: Azurite (npm package `azurite`) on 127.0.0.1, one per session.

`make azurite` installs it into .build/node (.ci/run does so before the tests). Where it is
missing the Azure tests fail under CI (CI=true) and are skipped on a developer's machine.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.store.targets import StoreTarget

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "lhbiaccount7"
ACCOUNT_KEY = base64.b64encode(b"azure-Key/That+MustNeverShow!!").decode()
_LISTENING = re.compile(r"listens on (https?://127\.0\.0\.1:\d+)")


def azurite_binary() -> str | None:
    """AZURITE_BLOB, the project-local install (.build/node), or azurite-blob on PATH."""
    for candidate in (
        os.environ.get("AZURITE_BLOB", ""),
        str(ROOT / ".build/node/node_modules/.bin/azurite-blob"),
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("azurite-blob")


def _missing() -> None:
    message = "azurite-blob is not installed: run `make azurite` (npm install of azurite)"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message + "; CI must run the Azure tests, so .ci/run installs it")
    pytest.skip(message)


@contextlib.contextmanager
def running_azurite(work: Path, *extra: str, on_disk: bool = False) -> Iterator[str]:
    """An Azurite blob service on a free port of 127.0.0.1; yields its endpoint. Its data
    stays in memory, or with `on_disk` in `work` (the benchmarks)."""
    binary = azurite_binary()
    if binary is None:
        _missing()
        raise AssertionError("unreachable")
    log = work / "azurite.log"
    env = {**os.environ, "AZURITE_ACCOUNTS": f"{ACCOUNT}:{ACCOUNT_KEY}"}
    argv = [
        binary,
        *("--blobHost", "127.0.0.1", "--blobPort", "0"),
        *(("--location", str(work / "data")) if on_disk else ("--inMemoryPersistence",)),
        *("--skipApiVersionCheck", "--disableTelemetry", "--silent", *extra),
    ]
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (found := _LISTENING.search(log.read_text(errors="replace"))):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Azurite did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield found[1]
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def azurite_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The blob endpoint of an Azurite process that knows one account, ACCOUNT."""
    with running_azurite(tmp_path_factory.mktemp("azurite")) as endpoint:
        yield endpoint


_container_counter = iter(range(1, 1_000_000))


def azure_env(endpoint: str) -> dict[str, str]:
    return {
        "AZBLOB_ACCOUNT_NAME": ACCOUNT,
        "AZBLOB_ACCOUNT_KEY": ACCOUNT_KEY,
        "AZBLOB_ENDPOINT": endpoint,
    }


def create_container(endpoint: str, ca_file: str | None = None) -> str:
    """A fresh container (Longhorn's driver never creates one); returns its name."""
    from azure.storage.blob import BlobServiceClient

    name = f"container-{os.getpid()}-{next(_container_counter)}"
    service = BlobServiceClient(
        f"{endpoint}/{ACCOUNT}/",
        credential={"account_name": ACCOUNT, "account_key": ACCOUNT_KEY},
        connection_verify=ca_file or True,
    )
    with service:
        service.create_container(name)
    return name


@pytest.fixture
def azblob_container(azurite_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh container; the environment carries Longhorn's azblob keys. Returns its name."""
    for var, value in azure_env(azurite_endpoint).items():
        monkeypatch.setenv(var, value)
    for var in ("AZBLOB_CERT", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    return create_container(azurite_endpoint)


@pytest.fixture
def azblob_store_target(azurite_endpoint: str, azblob_container: str) -> Iterator[StoreTarget]:
    yield StoreTarget(
        f"azblob://{azblob_container}@core.windows.net/backups/",
        azure_env(azurite_endpoint),
        secrets=(ACCOUNT_KEY,),
        endpoint_var="AZBLOB_ENDPOINT",
    )
