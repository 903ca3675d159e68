"""List, inspect and delete backing image backups on a backupstore."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from longhorn_bi.engine.backup_url import (
    BackupTarget,
    format_backup_url,
    parse_backup_url,
    parse_target,
)
from longhorn_bi.engine.errors import BackupstoreError
from longhorn_bi.engine.store.catalog import block_names, image_names, load_cfg, require_cfg
from longhorn_bi.engine.store.drivers import StoreDriver, open_store
from longhorn_bi.engine.store.layout import BackingImageCfg, block_key, cfg_key
from longhorn_bi.engine.store.locks import (
    DEFAULT_TIMINGS,
    DELETION_LOCK,
    BackupstoreLock,
    LockTimings,
)


@dataclass(frozen=True)
class BackupInfo:
    name: str
    url: str
    size: int
    checksum: str
    compression: str
    created: str
    completed: str
    blocks: int
    labels: dict[str, str]
    secret: str = ""  # an encrypted image's Secret, and its namespace
    secret_namespace: str = ""

    @property
    def complete(self) -> bool:
        return self.completed != ""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "url": self.url,
            "size": self.size,
            "checksum": self.checksum,
            "compression": self.compression,
            "created": self.created,
            "completed": self.completed,
            "complete": self.complete,
            "blocks": self.blocks,
            "labels": self.labels,
            "secret": self.secret,
            "secretNamespace": self.secret_namespace,
        }


def _info(target: BackupTarget, cfg: BackingImageCfg) -> BackupInfo:
    return BackupInfo(
        name=cfg.name,
        url=format_backup_url(target, cfg.name),
        size=cfg.size,
        checksum=cfg.checksum,
        compression=cfg.compression_method,
        created=cfg.created,
        completed=cfg.completed,
        blocks=len(cfg.blocks),
        labels=dict(cfg.labels or {}),
        secret=cfg.secret,
        secret_namespace=cfg.secret_namespace,
    )


def list_backups(
    target: str, *, store: StoreDriver | None = None, store_options: Mapping[str, str] | None = None
) -> list[BackupInfo]:
    parsed = parse_target(target)
    own = store is None
    store = store or open_store(parsed, store_options)
    try:
        found = []
        for name in image_names(store):
            cfg = load_cfg(store, name)
            if cfg is not None:
                found.append(_info(parsed, cfg))
        return found
    finally:
        if own:
            store.close()


def inspect_backup(
    url: str, *, store: StoreDriver | None = None, store_options: Mapping[str, str] | None = None
) -> BackupInfo:
    parsed = parse_backup_url(url)
    own = store is None
    store = store or open_store(parsed.target, store_options)
    try:
        return _info(parsed.target, require_cfg(store, parsed.backing_image))
    finally:
        if own:
            store.close()


@dataclass(frozen=True)
class RemoveResult:
    url: str
    name: str
    deleted_blocks: int
    kept_blocks: int
    gc_skipped: str  # why unreferenced blocks were kept, "" when collected


def remove_backup(
    url: str,
    *,
    store: StoreDriver | None = None,
    store_options: Mapping[str, str] | None = None,
    lock_timings: LockTimings = DEFAULT_TIMINGS,
) -> RemoveResult:
    """Delete a backup's cfg under a delete lock, then collect blocks nothing else uses."""
    parsed = parse_backup_url(url)
    name = parsed.backing_image
    own = store is None
    store = store or open_store(parsed.target, store_options)
    try:
        with BackupstoreLock(store, DELETION_LOCK, lock_timings):  # before any read, as Longhorn
            require_cfg(store, name)
            store.delete(cfg_key(name))
            deleted, kept, skipped = _collect_blocks(store)
        return RemoveResult(url, name, deleted, kept, skipped)
    finally:
        if own:
            store.close()


def _collect_blocks(store: StoreDriver) -> tuple[int, int, str]:
    names = image_names(store)
    referenced: set[str] = set()
    for image in names:
        try:
            cfg = load_cfg(store, image)
        except BackupstoreError:
            return 0, 0, f"the cfg of {image!r} cannot be read"
        if cfg is None:
            continue
        if not cfg.complete:
            return 0, 0, f"the backup of {image!r} is in progress"
        referenced.update(ref.checksum for ref in cfg.blocks)
    stored = list(block_names(store))
    if sorted(image_names(store)) != sorted(names):
        return 0, 0, "a new backup appeared while blocks were counted"
    deleted = 0
    for block in stored:
        if block not in referenced:
            store.delete(block_key(block))
            deleted += 1
    return deleted, len(stored) - deleted, ""
