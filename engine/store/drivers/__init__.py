"""Backupstore drivers, one module per URL scheme, and `open_store`, which picks one.

The registry sits above the drivers and the protocol (base.py) below them: drivers import
base, this module imports the drivers, and nothing imports back up.
"""

from __future__ import annotations

from collections.abc import Mapping

from longhorn_bi.engine.backup_url import BackupTarget, parse_target
from longhorn_bi.engine.errors import UnsupportedFeature
from longhorn_bi.engine.store.drivers.azblob import AzureBlobStore
from longhorn_bi.engine.store.drivers.base import StoreDriver
from longhorn_bi.engine.store.drivers.cifs import open_cifs_store
from longhorn_bi.engine.store.drivers.nfs import open_nfs_store
from longhorn_bi.engine.store.drivers.s3 import S3Store
from longhorn_bi.engine.store.drivers.vfs import VfsStore

__all__ = ["StoreDriver", "open_store"]


def open_store(target: str | BackupTarget, options: Mapping[str, str] | None = None) -> StoreDriver:
    """Open the backupstore at a target. `options`: driver options (e.g. mount_point).

    Callers that already parsed the target pass the BackupTarget: it is not parsed again."""
    if not isinstance(target, BackupTarget):
        target = parse_target(target)
    opts = dict(options or {})
    if target.scheme == "vfs":
        return VfsStore(target.url, target.path)
    if target.scheme == "s3":
        return S3Store(target)
    if target.scheme == "azblob":
        return AzureBlobStore(target)
    if target.scheme == "nfs":
        return open_nfs_store(target, mount_point=opts.get("mount_point"))
    if target.scheme == "cifs":
        return open_cifs_store(target, mount_point=opts.get("mount_point"))
    raise UnsupportedFeature(
        f"{target.scheme}:// backup targets are not supported yet",
        hint="use an s3://, azblob://, cifs://, nfs:// or vfs:// target for store commands",
    )
