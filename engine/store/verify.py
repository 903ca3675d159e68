"""Verify a backup without writing one: every block and the whole-image SHA-512 are checked.

Unlike restore, a bad block does not stop the run: each is reported with its offset. A
sampled verification (`pick`) reads only some blocks, as `restic check --read-data-subset`
reads some packs: each is checked against its name, but the image's SHA-512 cannot be.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

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
from longhorn_bi.engine.store.drivers import StoreDriver, open_store
from longhorn_bi.engine.store.layout import BlockRef
from longhorn_bi.engine.store.locks import (
    BACKUP_LOCK,
    DEFAULT_TIMINGS,
    BackupstoreLock,
    LockTimings,
)
from longhorn_bi.engine.store.restore import Progress, check_workers, open_complete

DEFAULT_MAX_SIZE = 1 << 40  # 1 TiB: some 10 minutes of hashing, holes included
# Chooses the blocks a sampled verification reads, given all of the backup's (in order).
BlockPick = Callable[[str, Sequence[BlockRef]], Sequence[BlockRef]]


@dataclass
class VerifyResult:
    url: str
    name: str
    size: int
    blocks: int
    expected_checksum: str
    checksum: str = ""  # computed; "" when a bad block (or sampling) made it meaningless
    bad_blocks: list[tuple[int, str]] = field(default_factory=list)  # (offset, problem)
    checked_blocks: int = 0  # blocks read; fewer than `blocks` when sampled
    sampled: bool = False  # only some blocks were read: the image's SHA-512 is unchecked

    @property
    def ok(self) -> bool:
        unchecked = self.sampled or not self.expected_checksum
        return not self.bad_blocks and (unchecked or self.checksum == self.expected_checksum)


def verify_backup(
    url: str,
    *,
    concurrent_limit: int = 4,
    store: StoreDriver | None = None,
    store_options: Mapping[str, str] | None = None,
    progress: Progress | None = None,
    lock_timings: LockTimings = DEFAULT_TIMINGS,
    max_size: int = DEFAULT_MAX_SIZE,
    pick: BlockPick | None = None,
) -> VerifyResult:
    """Read and check every block and the whole-image SHA-512; write nothing.

    `max_size`: the largest image Size verified (the work grows with Size, holes included:
    they are hashed as zeros); a larger one is refused before any block is read.
    `pick(name, blocks)`: read only these blocks (a sample); the whole image is not hashed."""
    check_workers(concurrent_limit)
    parsed = parse_backup_url(url)
    own_store = store is None
    store = store or open_store(parsed.target, store_options)
    try:
        # Locked before the cfg is read, as Longhorn's restore does.
        with BackupstoreLock(store, BACKUP_LOCK, lock_timings):
            return _verify(
                url, store, parsed.backing_image, concurrent_limit, progress, max_size, pick
            )
    finally:
        if own_store:
            store.close()


def _verify(
    url: str,
    store: StoreDriver,
    name: str,
    concurrent_limit: int,
    progress: Progress | None,
    max_size: int,
    pick: BlockPick | None,
) -> VerifyResult:
    cfg = open_complete(store, name)
    if cfg.size > max_size:
        raise InvalidInput(
            f"the backup of {name!r} records a Size of {cfg.size} bytes, over the limit of "
            f"{max_size} bytes",
            hint="raise the limit with --max-size if the image really is that large",
        )
    refs = list(pick(cfg.name, cfg.blocks)) if pick is not None else cfg.blocks
    result = VerifyResult(url, cfg.name, cfg.size, len(cfg.blocks), cfg.checksum)
    result.checked_blocks, result.sampled = len(refs), len(refs) < len(cfg.blocks)
    # A sample leaves gaps of unread data: the image's hash would be meaningless.
    whole = None if result.sampled else hashlib.sha512()
    position = 0

    pool = BufferPool(window_for(concurrent_limit) + 1)

    def fetch(ref: BlockRef) -> tuple[Data, bytearray | None]:
        return fetch_block(store, ref, pool)

    blocks = contextlib.closing(ordered_map(refs, fetch, concurrent_limit))
    with blocks as done:
        for ref, future in done:
            error = future.exception()
            if error is not None:
                if not isinstance(error, IntegrityError | BackupstoreError):
                    raise error
                result.bad_blocks.append((ref.offset, error.message))
                continue
            data, buffer = future.result()
            if ref.offset + len(data) > cfg.size or ref.offset < position:
                pool.put(buffer)
                result.bad_blocks.append((ref.offset, "block does not fit the image layout"))
                continue
            if whole is not None:
                hash_zeros(whole, ref.offset - position)
                whole.update(data)
            pool.put(buffer)
            if progress is not None:
                progress(ref.offset + len(data) - position)
            position = ref.offset + len(data)
    if whole is not None and not result.bad_blocks:
        hash_zeros(whole, cfg.size - position)
        result.checksum = whole.hexdigest()
    if progress is not None:
        progress(max(0, cfg.size - position))
    return result
