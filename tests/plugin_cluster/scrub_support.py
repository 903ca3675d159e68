"""For the verify tests: real backups on vfs and moto, BackupBackingImages on the fake API server."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.catalog import require_cfg
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.layout import block_key
from longhorn_bi.engine.store.locks import LockTimings
from tests.fakekube import FakeKubeServer
from tests.plugin_cluster.conftest import API, NS, Cluster, backup

BLOCK = 2 * 1024 * 1024
FAST = LockTimings(check_wait=0.05, check_interval=0.1, max_wait=3.0)


def make_image(path: Path, blocks: int, seed: int) -> bytes:
    data = b"".join(hashlib.shake_256(bytes([seed, i])).digest(BLOCK) for i in range(blocks))
    path.write_bytes(data)
    return data


def backup_object(
    name: str,
    url: str,
    checksum: str,
    *,
    state: str = "Completed",
    target: str = "default",
    size: int = 0,
) -> dict[str, Any]:
    """A BackupBackingImage (conftest.backup) of a real backup: its URL, checksum and size."""
    obj: dict[str, Any] = backup(name, state=state, target=target, size=size)
    if state == "Completed":
        obj["status"] |= {"url": url, "checksum": checksum}
    return obj


def target_object(name: str, url: str, secret: str = "") -> dict[str, Any]:
    spec = {"backupTargetURL": url, "pollInterval": "300s"}
    if secret:
        spec["credentialSecret"] = secret
    return {
        "apiVersion": API,
        "kind": "BackupTarget",
        "metadata": {"name": name, "namespace": NS},
        "spec": spec,
        "status": {"available": True},
    }


@dataclass
class Store:
    """Backups made by the engine on a target, and ways to damage them."""

    target: str
    root: Path | None  # the vfs folder, None for s3

    def backup(self, tmp: Path, name: str, blocks: int = 3, seed: int = 1) -> tuple[str, str, int]:
        image = tmp / f"{name}.raw"
        make_image(image, blocks, seed)
        result = backup_image(image, self.target, name, lock_timings=FAST)
        return result.url, result.checksum, result.size

    def block_keys(self, name: str) -> list[tuple[int, str]]:
        store = open_store(self.target)
        try:
            return [(r.offset, block_key(r.checksum)) for r in require_cfg(store, name).blocks]
        finally:
            store.close()


def notes_of(server: FakeKubeServer, name: str) -> dict[str, str]:
    obj = server.get("backupbackingimages", NS, name) or {}
    return dict((obj.get("metadata") or {}).get("annotations") or {})


def objects(server: FakeKubeServer, plural: str) -> list[dict[str, Any]]:
    with server.store.cond:
        return [o for (p, _, _), o in server.store.objects.items() if p == plural]


def vfs_store(cluster: Cluster, tmp_path: Path) -> Store:
    """A vfs target "local" of the cluster."""
    root = tmp_path / "store"
    target = f"vfs://{root}"
    cluster.seed(target_object("local", target))
    return Store(target, root)
