"""Cluster-mode tests: the real CLI as a subprocess against the fake API server.

A background thread stands in for Longhorn's controller: it waits for the CLI's watch
(or its object) on the server's side, then writes status updates with update_status.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakekube import FakeKubeServer, crd_file, volume_crd_file, write_kubeconfig
from tests.store.s3_server import moto_endpoint, s3_bucket  # noqa: F401  (fixtures for verify)
from tests.support import run_cli

NS = "longhorn-system"
API = "longhorn.io/v1beta2"
TARGET_URL = "s3://backups@us-east-1/"
CHECKSUM = "ab" * 64
SYNC = 30.0  # upper bound of a server-side wait for the CLI; never a measured duration


def backup_target(name: str = "default", url: str = TARGET_URL, available: bool = True) -> Any:
    return {
        "apiVersion": API,
        "kind": "BackupTarget",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"backupTargetURL": url, "pollInterval": "300s"},
        "status": {"available": available},
    }


def backing_image(name: str, state: str = "ready") -> Any:
    return {
        "apiVersion": API,
        "kind": "BackingImage",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"sourceType": "download", "sourceParameters": {"url": "http://images/a.qcow2"}},
        "status": {
            "checksum": CHECKSUM,
            "diskFileStatusMap": {"disk-1": {"state": state, "progress": 100}},
        },
    }


def backup(
    name: str,
    image: str | None = None,
    *,
    state: str = "Completed",
    target: str = "default",
    progress: int = 100,
    size: int = 3 * 1024 * 1024,
    user_created: bool = True,
) -> Any:
    image = image or name
    status: dict[str, Any] = {"state": state, "progress": progress, "backingImage": image}
    if state == "Completed":
        status |= {
            "url": f"{TARGET_URL}?backingImage={image}",
            "checksum": CHECKSUM,
            "size": size,
            "compressionMethod": "lz4",
        }
    return {
        "apiVersion": API,
        "kind": "BackupBackingImage",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"userCreated": user_created, "backingImage": image, "backupTargetName": target},
        "status": status,
    }


class Cluster:
    """The fake API server, its kubeconfig, and the CLI run against it."""

    def __init__(self, server: FakeKubeServer, kubeconfig: Path) -> None:
        self.server = server
        self.kubeconfig = kubeconfig
        self.server_url = server.url  # kept: the URL is gone once the server is stopped

    def cli(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, "--kubeconfig", str(self.kubeconfig), env=env)

    def seed(self, *objects: Any) -> None:
        for obj in objects:
            self.server.put(obj)

    def watch_requests(self, plural: str) -> list[dict[str, str]]:
        return [
            query
            for method, path, query in self.server.requests
            if method == "GET" and path.endswith(f"/{plural}") and query.get("watch") == "true"
        ]

    def requests(self, method: str, plural: str) -> list[tuple[str, dict[str, str]]]:
        return [
            (path, query)
            for m, path, query in self.server.requests
            if m == method and (path.endswith(f"/{plural}") or f"/{plural}/" in path)
        ]

    def wait_for_watches(self, plural: str, count: int) -> None:
        """Block (server side) until the CLI has opened `count` watches of `plural`."""
        deadline = time.monotonic() + SYNC
        pause = threading.Event()
        while len(self.watch_requests(plural)) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the CLI opened {len(self.watch_requests(plural))} watches")
            pause.wait(0.01)
        self.server.wait_for_watchers(1, timeout=SYNC)


class Controller(threading.Thread):
    """Longhorn's controller, played by a thread; errors surface in join()."""

    def __init__(self, script: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self.script = script
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.script()
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self, timeout: float | None = SYNC) -> None:
        super().join(timeout)
        if self.error is not None:
            raise self.error


@pytest.fixture
def cluster(fake_kube: FakeKubeServer, fake_kubeconfig: Path) -> Cluster:
    """A Longhorn 1.12 cluster with an available default target and a ready image bi1."""
    c = Cluster(fake_kube, fake_kubeconfig)
    c.seed(backup_target(), backing_image("bi1"))
    return c


@pytest.fixture
def cluster16(tmp_path: Path) -> Iterator[Cluster]:
    """A Longhorn 1.6 cluster: the backup-target Setting configures the one target."""
    with FakeKubeServer(crds=(crd_file("1.6"), volume_crd_file("1.6"))) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig16", server.url, token=server.token)
        c = Cluster(server, kubeconfig)
        c.seed(
            {
                "apiVersion": API,
                "kind": "Setting",
                "metadata": {"name": "backup-target", "namespace": NS},
                "value": TARGET_URL,
            },
            backing_image("bi1"),
        )
        yield c
