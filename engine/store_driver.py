"""The small protocol every backupstore driver implements, and the factory that picks one.

Keys are '/'-separated paths relative to the store root, built by blockstore_layout.
Drivers import their heavy dependencies (boto3) lazily, so that this module stays light.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from longhorn_bi.engine.backup_url import BackupTarget, parse_target
from longhorn_bi.engine.errors import BackupstoreError, UnsupportedFeature


@runtime_checkable
class StoreDriver(Protocol):
    """A flat key/value view of a backupstore."""

    @property
    def url(self) -> str:
        """The target URL, safe to print (no secrets)."""
        ...

    def read(self, key: str) -> bytes:
        """The whole object; NotFound when it does not exist."""
        ...

    def write(
        self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        """Store an object atomically: readers see the old object, the new one or none.

        `durable=False` defers flushing to stable storage until the next `sync()`.
        """
        ...

    def sync(self) -> None:
        """Make every write so far durable (a barrier before a cfg that claims them)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error."""
        ...

    def walk(self, prefix: str) -> list[str]:
        """Keys of every object under the folder `prefix`, relative to it (one listing on S3)."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Names of the objects and folders directly under `prefix` (a folder key)."""
        ...

    def size(self, key: str) -> int: ...

    def mtime(self, key: str) -> float:
        """The store's modification time of the object (seconds since the epoch, UTC)."""
        ...

    def close(self) -> None: ...


def check_key(key: str) -> str:
    """Refuse keys that could leave the store root."""
    if not key or key.startswith("/") or "\x00" in key or "\\" in key:
        raise BackupstoreError(f"invalid backupstore key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise BackupstoreError(f"invalid backupstore key {key!r}")
    return key


def open_store(url: str | BackupTarget, options: Mapping[str, str] | None = None) -> StoreDriver:
    """Open the backupstore at a target URL. `options`: driver options (e.g. mount_point)."""
    target = url if isinstance(url, BackupTarget) else parse_target(url)
    opts = dict(options or {})
    if target.scheme == "vfs":
        from longhorn_bi.engine.store_vfs import VfsStore

        return VfsStore(target.url, target.path)
    if target.scheme == "s3":
        from longhorn_bi.engine.store_s3 import S3Store

        return S3Store(target)
    if target.scheme == "nfs":
        from longhorn_bi.engine.store_nfs import open_nfs_store

        return open_nfs_store(target, mount_point=opts.get("mount_point"))
    raise UnsupportedFeature(
        f"{target.scheme}:// backup targets are not supported yet",
        hint="use an s3://, nfs:// or vfs:// target for store commands",
    )
