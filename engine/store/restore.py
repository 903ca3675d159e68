"""Restore a backing image backup into a file.

Blocks are fetched by N workers and decoded by their magic bytes; the whole-image SHA-512 is
computed in offset order as they arrive (holes hash as zeros). Restore writes into a
temporary file next to the output, truncated to Size so that unmapped ranges stay holes, and
renames it only when every check passed.

Block names are checked (a SHA-512 of each block) only when no whole-image SHA-512 is known
or `verify_blocks` asks for it. With a known one, that check finds nothing the whole-image
check would let through: any wrong byte changes the image's SHA-512, and a mismatch
publishes nothing. It would only say *where* the damage is, at the cost of a second SHA-512
of every stored byte on every restore (as much CPU as the whole-image hash). So the names
are checked after a mismatch instead: a diagnosis pass fetches every block again, checks
each against its name and the error names the bad ones. Longhorn's own restore checks each
block (longhorn/backupstore backupbackingimage/backupbackingimage.go, `restoreBlockToFile`
-> `DecompressAndVerifyWithFallback`, vendored by backing-image-manager v1.6.4 to v1.12.1);
`verify_blocks=True` (`--verify-blocks`) does the same.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from longhorn_bi.engine.backup_url import parse_backup_url
from longhorn_bi.engine.errors import BackupstoreError, IntegrityError, InvalidInput
from longhorn_bi.engine.store.block_io import (
    BufferPool,
    Data,
    fetch_block,
    hash_zeros,
    ordered_map,
    window_for,
)
from longhorn_bi.engine.store.block_writer import DirectOutput, OrderedWriter
from longhorn_bi.engine.store.catalog import require_cfg
from longhorn_bi.engine.store.drivers import StoreDriver, open_store
from longhorn_bi.engine.store.layout import (
    BLOCK_SIZE,
    BackingImageCfg,
    BlockRef,
    block_key,
    is_image_checksum,
)
from longhorn_bi.engine.store.locks import (
    BACKUP_LOCK,
    DEFAULT_TIMINGS,
    BackupstoreLock,
    LockTimings,
)

Progress = Callable[[int], None]
WRITE_DEPTH = 2  # blocks queued for the writer: enough to keep it busy while one is hashed


@dataclass(frozen=True)
class RestoreResult:
    url: str
    name: str
    output: str
    size: int
    checksum: str
    blocks: int


def check_workers(limit: int) -> None:
    if limit < 1:
        raise InvalidInput(
            f"--concurrent-limit must be at least 1, got {limit}",
            hint="Longhorn starts no restore worker at 0; use 1 or more",
        )


def check_restore_args(concurrent_limit: int, checksum: str | None) -> str | None:
    """Validate the flags of a restore; returns the normalised checksum."""
    check_workers(concurrent_limit)
    if checksum is None:
        return None
    checksum = checksum.strip().lower()
    if not is_image_checksum(checksum):
        raise InvalidInput(
            "--checksum must be 128 hex characters (a SHA-512)",
            hint="take it from `kubectl longhorn-bi checksum FILE` or the backup's cfg",
        )
    return checksum


def open_complete(store: StoreDriver, name: str) -> BackingImageCfg:
    cfg = require_cfg(store, name)
    if not cfg.complete:
        raise BackupstoreError(
            f"the backup of {name!r} in {store.url} is not complete (no CompleteTime)",
            hint="wait for the backup to finish, or run the backup again",
        )
    # layout.parse_cfg checked every field (Size, offsets, block names) already.
    return cfg


def check_fits(cfg: BackingImageCfg, folder: Path) -> None:
    """Refuse, before the output exists, an image its file system cannot hold: Size beyond
    the file system, or more stored data than its free space (holes take no space)."""
    try:
        fs = os.statvfs(folder)
    except OSError as exc:
        raise InvalidInput(f"--output folder {str(folder)!r}: {exc.strerror}") from None
    capacity = fs.f_blocks * fs.f_frsize
    free = fs.f_bavail * fs.f_frsize
    data = min(cfg.size, len(cfg.blocks) * BLOCK_SIZE)
    if cfg.size > capacity or data > free:
        raise BackupstoreError(
            f"the backup of {cfg.name!r} is a {cfg.size}-byte image with up to {data} bytes of "
            f"data; the file system of {str(folder)!r} holds {capacity} bytes, {free} free",
            hint="restore onto a larger file system, or check the backup's cfg (store inspect)",
        )


def restore_backup(
    url: str,
    output: str | Path,
    *,
    concurrent_limit: int = 4,
    checksum: str | None = None,
    store: StoreDriver | None = None,
    store_options: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    lock_timings: LockTimings = DEFAULT_TIMINGS,
    verify_blocks: bool = False,
) -> RestoreResult:
    """Restore the backup at `url` into `output`; nothing is left at `output` on failure.

    verify_blocks: check every block against its name while restoring, even when the
    whole-image SHA-512 is known (see the module's docstring)."""
    checksum = check_restore_args(concurrent_limit, checksum)
    parsed = parse_backup_url(url)
    out = Path(output)
    if out.is_dir():
        raise InvalidInput(f"--output {str(out)!r} is a directory", hint="give a file path")
    if out.exists() and not out.is_file():  # a device or FIFO would be replaced by a file
        raise InvalidInput(
            f"--output {str(out)!r} exists and is not a regular file", hint="give a file path"
        )
    if not out.parent.is_dir():
        raise InvalidInput(f"--output folder {str(out.parent)!r} does not exist")
    own_store = store is None
    store = store or open_store(parsed.target, store_options)
    try:
        # Locked before the cfg is read, as Longhorn's RestoreBackingImageBackup does.
        with BackupstoreLock(store, BACKUP_LOCK, lock_timings):
            cfg = open_complete(store, parsed.backing_image)
            check_fits(cfg, out.parent)
            expected = checksum or cfg.checksum
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".part", dir=out.parent)
            try:
                _truncate(fd, cfg.size, out)
                check_names = verify_blocks or not expected
                copy = _Copy(store, cfg, fd, tmp, concurrent_limit)
                digest = copy.run(progress, check_names)
                if expected and digest != expected and not check_names:
                    digest = _diagnose(copy, out)
                if expected and digest != expected:
                    source = "--checksum" if checksum else "the backup's recorded Checksum"
                    raise IntegrityError(
                        f"the restored image's SHA-512 {digest} does not match {source} {expected}"
                    )
                # No fsync, as Longhorn's own restore: the rename publishes a complete file.
                os.close(fd)
                fd = -1
                os.chmod(tmp, 0o644)
                os.replace(tmp, out)
            except BaseException:
                if fd >= 0:
                    os.close(fd)
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise
        return RestoreResult(url, cfg.name, str(out), cfg.size, digest, len(cfg.blocks))
    finally:
        if own_store:
            store.close()


def _truncate(fd: int, size: int, out: Path) -> None:
    try:
        os.ftruncate(fd, size)
    except OSError as exc:  # EFBIG: beyond the file system's largest file
        raise BackupstoreError(
            f"cannot make {str(out)!r} {size} bytes long: {exc.strerror}",
            hint="restore onto a file system that holds files this large",
        ) from None


@dataclass(frozen=True)
class BadBlock:
    offset: int
    key: str
    problem: str


@dataclass(frozen=True)
class _Copy:
    """The blocks of `cfg` copied into the temporary file `path` (open as `fd`)."""

    store: StoreDriver
    cfg: BackingImageCfg
    fd: int
    path: str
    workers: int

    def run(
        self, progress: Progress | None, check_names: bool, bad: list[BadBlock] | None = None
    ) -> str:
        """Workers fetch and decode blocks (and check their names when asked); this thread
        only hashes the whole image in offset order (the critical path); the writer thread
        writes each block once hashed. With `bad`, a block that fails its check is noted
        there and skipped instead of ending the copy. Returns the image's SHA-512."""
        cfg = self.cfg
        whole = hashlib.sha512()
        # Buffers: the blocks in flight, the one being hashed, the writer's queue and the
        # one being written. No more: every fresh buffer costs page faults.
        pool = BufferPool(window_for(self.workers) + WRITE_DEPTH + 2)

        def fetch(ref: BlockRef) -> tuple[Data, bytearray | None]:
            return fetch_block(self.store, ref, pool, check_name=check_names)

        direct = DirectOutput.open(self.path)
        writer = OrderedWriter(self.fd, pool, WRITE_DEPTH, "the restored image", direct)
        try:
            position = 0
            with contextlib.closing(ordered_map(cfg.blocks, fetch, self.workers)) as done:
                for ref, future in done:
                    error = future.exception()
                    if bad is not None and isinstance(error, IntegrityError):
                        bad.append(BadBlock(ref.offset, block_key(ref.checksum), error.message))
                        continue
                    data, buffer = future.result()
                    if ref.offset < position or ref.offset + len(data) > cfg.size:
                        pool.put(buffer)
                        _refuse_layout(ref.offset, position, cfg.size)
                    hash_zeros(whole, ref.offset - position)
                    whole.update(data)
                    writer.put(ref.offset, data, buffer)
                    if progress is not None:
                        progress(ref.offset + len(data) - position)
                    position = ref.offset + len(data)
            hash_zeros(whole, cfg.size - position)
        finally:
            try:
                writer.close()  # waits for the queued writes; raises a write error
            finally:
                if direct is not None:
                    direct.close()
        if progress is not None:
            progress(cfg.size - position)
        return whole.hexdigest()


def _diagnose(copy: _Copy, out: Path) -> str:
    """After a whole-image mismatch of a restore that did not check block names: copy again,
    checking every name, and name the blocks that fail. Returns the image's SHA-512 when
    none fails: the expected checksum is then wrong, or (once in a blue moon) a raw block
    that starts with a compression magic also decodes, which only its name tells apart."""
    _truncate(copy.fd, 0, out)  # zero runs are not written: no byte of the first copy stays
    _truncate(copy.fd, copy.cfg.size, out)
    bad: list[BadBlock] = []
    digest = copy.run(None, check_names=True, bad=bad)
    if bad:
        # A line, not a page: a rotten store can fail thousands of blocks.
        listed = "; ".join(f"offset {b.offset} ({b.key}): {b.problem}" for b in bad[:20])
        if len(bad) > 20:
            listed += f"; and {len(bad) - 20} more"
        raise IntegrityError(
            f"the restored image does not match its SHA-512; {len(bad)} block(s) do not "
            f"match their names: {listed}",
            hint="restore from another backup; `store verify URL` lists the same blocks",
        )
    return digest


def _refuse_layout(offset: int, position: int, size: int) -> None:
    if offset < position:
        raise IntegrityError(f"the backup lists two blocks for offset {offset}")
    raise IntegrityError(f"block at offset {offset} runs past the image Size {size}")
