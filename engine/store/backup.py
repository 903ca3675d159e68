"""Back up a raw image file to a backupstore in Longhorn's backing-image layout.

The image's SHA-512 is computed on a thread of its own while workers name (SHA-512), dedup,
compress and store the blocks (backup_pipeline.py). Holes (SEEK_DATA/SEEK_HOLE) are not read
and all-zero blocks are not stored: restore truncates to Size, so both read back as zeros,
exactly as Longhorn restores a sparse image.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from longhorn_bi.engine.backup_url import format_backup_url, parse_target
from longhorn_bi.engine.errors import InvalidInput, LockConflict, NotFound
from longhorn_bi.engine.names import (
    label_key_problem,
    label_value_problem,
    namespace_problem,
    secret_name_problem,
)
from longhorn_bi.engine.store.backup_pipeline import (
    BlockUploader,
    HeadStart,
    ImageHash,
    check_unchanged,
    data_blocks,
    data_extents,
    store_blocks,
)
from longhorn_bi.engine.store.catalog import load_cfg, save_cfg
from longhorn_bi.engine.store.drivers import StoreDriver, open_store
from longhorn_bi.engine.store.layout import (
    COMPRESSION_METHODS,
    SECTOR_SIZE,
    BackingImageCfg,
    check_image_name,
    now_rfc3339,
)
from longhorn_bi.engine.store.locks import (
    BACKUP_LOCK,
    DEFAULT_TIMINGS,
    BackupstoreLock,
    LockTimings,
)

Progress = Callable[[int], None]


@dataclass(frozen=True)
class BackupResult:
    url: str
    name: str
    size: int
    checksum: str
    compression: str
    block_count: int  # blocks referenced by the cfg
    new_blocks: int  # blocks this run stored
    stored_bytes: int  # bytes this run stored (compressed)
    zero_blocks: int  # all-zero blocks not stored
    hole_bytes: int  # bytes in holes, not read
    already: bool  # a complete backup existed: nothing was uploaded


def check_secret(secret: str, namespace: str) -> None:
    """An encrypted image's secret: both flags or neither (Longhorn looks the pair up)."""
    if bool(secret) != bool(namespace):
        raise InvalidInput(
            "--secret and --secret-namespace go together",
            hint="give both: the name and the namespace of the image's encryption secret",
        )
    if secret:
        problem = secret_name_problem(secret) or namespace_problem(namespace)
        if problem:
            raise InvalidInput(problem, hint="name the Kubernetes Secret that encrypts the image")


def check_labels(labels: Mapping[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        problem = label_key_problem(key) or label_value_problem(value)
        if problem:
            raise InvalidInput(problem, hint="give labels as --label key=value")
    return dict(labels)


def backup_image(
    image: str | Path,
    target: str,
    name: str,
    *,
    compression: str = "lz4",
    concurrency: int = 4,
    labels: Mapping[str, str] | None = None,
    secret: str = "",
    secret_namespace: str = "",
    store: StoreDriver | None = None,
    store_options: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    lock_timings: LockTimings = DEFAULT_TIMINGS,
) -> BackupResult:
    """Back up `image` as backing image `name` on `target`; returns the backup URL and figures.

    `secret`/`secret_namespace`: the Kubernetes Secret of an encrypted image, recorded in the
    complete cfg as Longhorn records it (backupbackingimage.go performBackup), so that a
    Longhorn restore makes an encrypted BackingImage."""
    check_image_name(name, importable=True)
    check_secret(secret, secret_namespace)
    parsed = parse_target(target)  # parsed once: the URL and the store take the result
    if compression not in COMPRESSION_METHODS:
        raise InvalidInput(
            f"unknown compression {compression!r}", hint="use --compression lz4, gzip or none"
        )
    if concurrency < 1:
        raise InvalidInput(f"--concurrency must be at least 1, got {concurrency}")
    clean_labels = check_labels(labels or {})
    url = format_backup_url(parsed, name)
    try:
        fd = os.open(image, os.O_RDONLY)
    except OSError as exc:
        raise NotFound(f"cannot open image file {str(image)!r}: {exc.strerror}") from None
    own_store = store is None
    store = store or open_store(parsed, store_options)
    whole: ImageHash | None = None
    head: HeadStart | None = None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(
                f"{str(image)!r} is not a regular file", hint="give the path of a raw image file"
            )
        size = info.st_size
        if size == 0 or size % SECTOR_SIZE:
            raise InvalidInput(
                f"image file {str(image)!r} is {size} bytes: a backing image must be a non-empty "
                f"multiple of {SECTOR_SIZE} bytes"
            )
        extents = data_extents(fd, size)
        # Reading the local image is no store access: its hash runs through the lock wait.
        whole = ImageHash(fd, size, extents)
        items = data_blocks(size, extents)
        head = HeadStart(fd, items, whole)  # names blocks through the lock wait too
        # Locked before anything is read or written, the "already complete" answer too.
        with BackupstoreLock(store, BACKUP_LOCK, lock_timings) as lock:
            named = head.finish()
            existing = load_cfg(store, name)
            if existing is not None and existing.complete:
                return _already(url, existing)
            if existing is not None:
                _refuse_if_other_writer(lock, name)
            cfg = BackingImageCfg(
                name=name,
                size=size,
                labels=clean_labels or None,
                compression=compression,
                created=now_rfc3339(),
            )
            save_cfg(store, cfg)  # in progress: no Blocks, no CompleteTime
            uploader = BlockUploader(store, compression)
            stored = store_blocks(fd, size, items, uploader, concurrency, whole, progress, named)
            checksum = whole.result()
            check_unchanged(fd, whole.stamp)
            store.sync()  # every block is on stable storage before a cfg claims it
            cfg.checksum = checksum
            refs = cfg.blocks = stored.refs
            cfg.block_count = len(refs)
            cfg.secret, cfg.secret_namespace = secret, secret_namespace
            cfg.completed = now_rfc3339()
            save_cfg(store, cfg)  # complete: the last write of a backup
        return BackupResult(
            url=url,
            name=name,
            size=size,
            checksum=checksum,
            compression=compression,
            block_count=len(refs),
            new_blocks=uploader.new_blocks,
            stored_bytes=uploader.stored_bytes,
            zero_blocks=stored.zero_blocks,
            hole_bytes=stored.hole_bytes,
            already=False,
        )
    finally:
        if head is not None:
            head.finish()  # before its file is closed
        if whole is not None:
            whole.stop()
        os.close(fd)
        if own_store:
            store.close()


def _refuse_if_other_writer(lock: BackupstoreLock, name: str) -> None:
    """An in-progress cfg is redone only when nobody can be writing it: any other live
    backup/restore lock may belong to its writer (all backing images share one lock folder,
    and a lock does not say what it is for)."""
    if lock.others():
        raise LockConflict(
            f"a backup of {name!r} is in progress and another backup or restore holds the "
            "store's lock: it may still be writing that backup",
            hint="retry when it has finished; a killed backup's lock expires after 150 s",
        )


def _already(url: str, cfg: BackingImageCfg) -> BackupResult:
    return BackupResult(
        url=url,
        name=cfg.name,
        size=cfg.size,
        checksum=cfg.checksum,
        compression=cfg.compression_method,
        block_count=len(cfg.blocks),
        new_blocks=0,
        stored_bytes=0,
        zero_blocks=0,
        hole_bytes=0,
        already=True,
    )
