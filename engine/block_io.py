"""Reading stored blocks back: fetch, decode, verify the name, in offset order with N workers."""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Generator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from longhorn_bi.engine.blockstore_layout import BLOCK_SIZE, BlockRef, block_key, block_name
from longhorn_bi.engine.compression import decompress, detect
from longhorn_bi.engine.errors import BackupstoreError, IntegrityError, NotFound
from longhorn_bi.engine.store_driver import StoreDriver

T = TypeVar("T")
ZEROS = bytes(BLOCK_SIZE)


def fetch_block(store: StoreDriver, ref: BlockRef) -> bytes | bytearray | memoryview:
    """The uncompressed bytes of the block at `ref`, checked against its name."""
    where = f"block at offset {ref.offset} ({ref.checksum[:16]}...)"
    try:
        raw = store.read(block_key(ref.checksum))
    except NotFound:
        raise IntegrityError(f"{where} is missing from the backupstore") from None
    except BackupstoreError as exc:
        raise BackupstoreError(f"{where} cannot be read: {exc.message}") from None
    try:
        data = decompress(raw, what=where, limit=BLOCK_SIZE)
    except IntegrityError:
        data = None
    if data is not None and len(data) <= BLOCK_SIZE and block_name(data) == ref.checksum:
        return data
    # A raw block may start with a compression magic by chance: then its raw bytes match.
    if detect(raw) != "none" and len(raw) <= BLOCK_SIZE and block_name(raw) == ref.checksum:
        return raw
    raise IntegrityError(f"{where} is corrupt: its content does not match its name")


def ordered_map(
    items: Iterable[T], fn: Callable[[T], object], workers: int
) -> Generator[tuple[T, Future[object]], None, None]:
    """Run fn over items on `workers` threads; yield (item, done future) in input order.

    At most 2 * workers items are in flight, which bounds memory whatever the image size.
    """
    window = max(2, 2 * workers)
    pending: deque[tuple[T, Future[object]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="block") as pool:
        try:
            for item in items:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= window:
                    item0, fut = pending.popleft()
                    fut.exception()  # wait
                    yield item0, fut
            while pending:
                item0, fut = pending.popleft()
                fut.exception()
                yield item0, fut
        finally:
            for _, fut in pending:
                fut.cancel()


def hash_zeros(hasher: hashlib._Hash, length: int) -> None:
    while length > 0:
        step = min(length, BLOCK_SIZE)
        hasher.update(memoryview(ZEROS)[:step])
        length -= step
