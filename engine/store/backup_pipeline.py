"""The data path of a backup: the whole-image SHA-512 and the blocks, on separate threads.

Measured on a 2-core AMD EPYC VM (docs/store.md, "Where the time goes"): the whole-image
SHA-512 is one sequential stream of about 1.25 CPU-s per GiB, the serial critical path; block
names (SHA-512 again), lz4 and the writes cost about as much again for a random image. So:

- `ImageHash` reads the image on a thread of its own and only hashes it (and notes the
  all-zero blocks it compared). It shares no buffer with the block work and never waits for
  a block to be stored: it starts before the store's lock is acquired (reading the local
  image is no store access) and runs through the lock wait. It only pauses 1 GiB ahead of
  the workers, so that their second read stays in the page cache, lending them its core.
- `HeadStart` names blocks (SHA-512) on the core the hash leaves while the store's lock is
  being acquired (0.2 s on a local store, 2 s on NFS and S3): a name needs no store access,
  and only names are kept, so memory does not grow with the wait.
- `store_blocks` workers each take the next block, skip it if the hash thread found it all
  zero, else read it (from the page cache: a cached read costs 0.06 CPU-s per GiB), skip it
  when all zero (a memcmp), name it, compress it and write it. While the hash runs, only
  cores - 1 workers compute at a time (`CpuTokens`; the others wait on their O_DIRECT
  writes), so the hash keeps a core to itself and never ends alone on an idle machine.

Reading twice costs the image's consistency: `check_unchanged` refuses a backup when the
image's size, mtime or ctime moved while it was read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from longhorn_bi.engine.errors import BackupstoreError
from longhorn_bi.engine.store.block_io import ZEROS, hash_zeros
from longhorn_bi.engine.store.compression import compress
from longhorn_bi.engine.store.drivers import StoreDriver
from longhorn_bi.engine.store.layout import BLOCK_SIZE, BlockRef, block_key, block_name

Progress = Callable[[int], None]
Payload = bytes | bytearray | memoryview
# How far the hash may run ahead of the block workers: their second read of a block should
# find it in the page cache, whatever the image size. Ahead by more, the hash pauses and
# lends its core to the workers (they are the slower stage then) until they are within
# RESUME_LEAD.
MAX_LEAD = 1 << 30
RESUME_LEAD = 768 << 20


def data_extents(fd: int, size: int) -> list[tuple[int, int]]:
    """[start, end) ranges that hold data; the whole file when holes cannot be asked for."""
    extents: list[tuple[int, int]] = []
    offset = 0
    try:
        while offset < size:
            try:
                start = os.lseek(fd, offset, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # only a hole remains
                    break
                raise
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
            extents.append((start, end))
            offset = end
    except (OSError, AttributeError):
        return [(0, size)]
    return extents


def block_has_data(extents: list[tuple[int, int]]) -> Iterator[bool]:
    """Per 2 MiB block, in order: whether any extent overlaps it."""
    index = 0
    offset = 0
    size = extents[-1][1] if extents else 0
    while True:
        end = offset + BLOCK_SIZE
        while index < len(extents) and extents[index][1] <= offset:
            index += 1
        yield index < len(extents) and extents[index][0] < end and offset < size
        offset = end


def read_exact(fd: int, view: memoryview, offset: int) -> None:
    done = 0
    while done < len(view):
        try:
            got = os.preadv(fd, [view[done:]], offset + done)
        except OSError as exc:
            raise BackupstoreError(
                f"cannot read the image file at offset {offset + done}: {exc.strerror}"
            ) from None
        if got == 0:
            raise BackupstoreError(
                f"the image file shrank while it was read (at offset {offset + done})"
            )
        done += got


def _stamp(fd: int) -> tuple[int, int, int]:
    info = os.fstat(fd)
    return info.st_size, info.st_mtime_ns, info.st_ctime_ns


def check_unchanged(fd: int, stamp: tuple[int, int, int]) -> None:
    """The image is read twice (hash, blocks): both reads saw the same bytes only if nobody
    wrote it in between. A write moves mtime and ctime (to the kernel's clock tick: a write
    in the very tick the backup started is not seen, as with any mtime-based check)."""
    if _stamp(fd) != stamp:
        raise BackupstoreError(
            "the image file changed while it was backed up",
            hint="back up an image nothing writes to (detach it, or copy it first)",
        )


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


class CpuTokens:
    """How many block workers may compute at once: cores - 1 while the image hash runs (it
    has a core to itself), every core once it is done."""

    def __init__(self, total: int) -> None:
        self._total = max(1, total)
        self._semaphore = threading.Semaphore(max(1, self._total - 1))
        self._widened = self._total == 1

    def widen(self) -> None:
        if not self._widened:
            self._widened = True
            self._semaphore.release()

    def lend(self) -> None:
        """The hash pauses: its core computes blocks meanwhile."""
        self._semaphore.release()

    def reclaim(self) -> None:
        """The hash resumes: one block computation fewer at a time, once one ends."""
        self._semaphore.acquire()

    def try_enter(self) -> bool:
        return self._semaphore.acquire(blocking=False)

    def __enter__(self) -> None:
        self._semaphore.acquire()

    def __exit__(self, *_: object) -> None:
        self._semaphore.release()


class ImageHash:
    """The image's SHA-512, computed on its own thread from the moment it is made."""

    def __init__(self, fd: int, size: int, extents: list[tuple[int, int]]) -> None:
        self.tokens = CpuTokens(cores())
        self._fd = fd
        self._size = size
        self._extents = extents
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._digest = ""
        self.worker_position = 0  # offset of the next block the workers take (set by them)
        self.position = 0  # how far the image has been read and hashed
        self.zero_blocks: set[int] = set()  # offsets of all-zero blocks read so far
        self.stamp = _stamp(fd)
        self._thread = threading.Thread(target=self._run, name="image-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        """Block by block (reads of up to 2 MiB: 128 KiB to 2 MiB made no difference), holes
        hashed as zeros. An all-zero block is noted, so that a worker that comes later only
        skips it: it costs the workers no read, only this thread's compare (a memcmp)."""
        try:
            whole = hashlib.sha512()
            buffer = bytearray(BLOCK_SIZE)
            view = memoryview(buffer)
            extents = self._extents
            index = 0  # the first extent that may overlap the current block
            for offset in range(0, self._size, BLOCK_SIZE):
                if self._stop.is_set():
                    return
                if offset - self.worker_position > MAX_LEAD:
                    self._wait_for_workers(offset)
                end = min(offset + BLOCK_SIZE, self._size)
                while index < len(extents) and extents[index][1] <= offset:
                    index += 1
                position, zero, read = offset, True, False
                other = index
                while other < len(extents) and extents[other][0] < end:
                    start = max(extents[other][0], offset)
                    stop = min(extents[other][1], end)
                    hash_zeros(whole, start - position)  # a hole inside the block
                    piece = view[: stop - start]
                    read_exact(self._fd, piece, start)
                    whole.update(piece)
                    zero = zero and all_zero(buffer, stop - start)
                    position, read = stop, True
                    other += 1
                hash_zeros(whole, end - position)
                if zero and read:
                    self.zero_blocks.add(offset)  # set.add is atomic
                self.position = end
            self._digest = whole.hexdigest()
        except BaseException as exc:  # raised by result(), on the caller's thread
            self._error = exc
        finally:
            self.tokens.widen()

    def _wait_for_workers(self, offset: int) -> None:
        self.tokens.lend()
        try:
            while offset - self.worker_position > RESUME_LEAD and not self._stop.wait(0.01):
                pass
        finally:
            self.tokens.reclaim()

    def running(self) -> bool:
        return self._thread.is_alive()

    def result(self) -> str:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._digest

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def data_blocks(size: int, extents: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(offset, length) of every block that holds data, in order."""
    offsets = range(0, size, BLOCK_SIZE)
    return [
        (offset, min(BLOCK_SIZE, size - offset))
        for offset, has_data in zip(offsets, block_has_data(extents), strict=False)
        if has_data
    ]


class HeadStart:
    """Block names computed before the store's lock is held, on the worker core that would
    otherwise idle through the lock wait (the hash has the other): 0.2 CPU-s of a 1 GiB
    backup's 3.5 on a local store, all the names of a 1 GiB image in the 2 s of NFS and S3.
    It reads each block after the hash has (from the page cache) and with a CPU token, as a
    worker does; compressing and writing wait for the lock (they need the store: dedup)."""

    def __init__(self, fd: int, blocks: list[tuple[int, int]], whole: ImageHash) -> None:
        self.names: dict[int, str] = {}  # offset -> name, of blocks with non-zero data
        self._fd = fd
        self._blocks = blocks
        self._whole = whole
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="head-start", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        buffer = bytearray(BLOCK_SIZE)
        whole = self._whole
        try:
            for offset, length in self._blocks:
                while whole.position < offset + length:  # behind the hash: a cached read
                    if self._stop.wait(0.002) or not whole.running():
                        return
                if offset in whole.zero_blocks:
                    continue
                with whole.tokens:
                    if self._stop.is_set():
                        return
                    view = memoryview(buffer)[:length]
                    read_exact(self._fd, view, offset)
                    if not all_zero(buffer, length):
                        self.names[offset] = block_name(view)
        except BackupstoreError:  # the workers read the block again and report it
            pass

    def finish(self) -> dict[int, str]:
        """Stop (after the block in hand) and give the names found so far."""
        self._stop.set()
        self._thread.join()
        return self.names


class BlockUploader:
    """Names, dedups, compresses and stores blocks; safe to call from several threads."""

    def __init__(self, store: StoreDriver, compression: str) -> None:
        self.store = store
        self.compression = compression
        self._claimed: set[str] = set()
        self._mutex = threading.Lock()
        self.new_blocks = 0
        self.stored_bytes = 0

    def prepare(self, data: memoryview, name: str = "") -> tuple[str, Payload | None]:
        """The block's name (given, or computed), and what to store under it (None: claimed
        or stored already)."""
        name = name or block_name(data)
        with self._mutex:
            if name in self._claimed:
                return name, None
            self._claimed.add(name)
        if self.store.exists(block_key(name)):  # an existing block is never rewritten
            return name, None
        return name, compress(self.compression, data)

    def write(self, name: str, payload: Payload) -> None:
        self.store.write(block_key(name), payload, durable=False)  # sync() before the cfg
        with self._mutex:
            self.new_blocks += 1
            self.stored_bytes += len(payload)


def all_zero(buffer: bytearray, length: int) -> bool:
    """bytearray == bytes is a memcmp (0.04 ms per 2 MiB); comparing memoryviews goes item
    by item (1.7 ms, as long as hashing the block, with the GIL held)."""
    if length == len(buffer):
        return buffer == ZEROS
    return buffer[:length] == ZEROS[:length]  # the short last block only


@dataclass
class StoredBlocks:
    refs: list[BlockRef]
    zero_blocks: int  # all-zero blocks not stored
    hole_bytes: int  # bytes in holes, not read


class _Blocks:
    """The work list the workers share: next() hands out each block with data once."""

    def __init__(self, size: int, items: list[tuple[int, int]], whole: ImageHash) -> None:
        self._whole = whole
        self.hole_bytes = size - sum(length for _, length in items)  # not read
        self._items = iter(items)
        self._mutex = threading.Lock()
        self.failed = threading.Event()
        self.done_bytes = 0  # read by the progress loop

    def next(self) -> tuple[int, int] | None:
        with self._mutex:
            if self.failed.is_set():
                return None
            item = next(self._items, None)
            if item is not None:
                self._whole.worker_position = item[0]
            return item


def store_blocks(
    fd: int,
    size: int,
    items: list[tuple[int, int]],
    uploader: BlockUploader,
    workers: int,
    whole: ImageHash,
    progress: Progress | None,
    named: dict[int, str] | None = None,
) -> StoredBlocks:
    """Read, name, compress and store the blocks `items` (data_blocks) on `workers` threads,
    sharing the CPU with the image hash `whole` (its tokens) and telling it how far they
    are. `named`: names found already (HeadStart), of blocks known to hold data."""
    blocks = _Blocks(size, items, whole)
    named = named or {}
    tokens = whole.tokens
    refs: list[BlockRef] = []
    zeros: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        buffer = bytearray(BLOCK_SIZE)
        try:
            while (item := blocks.next()) is not None:
                offset, length = item
                view = memoryview(buffer)[:length]
                name, payload = "", None
                if offset in whole.zero_blocks:  # the hash thread compared it already
                    zeros.append(offset)
                    blocks.done_bytes += length
                    continue
                known = named.get(offset, "")
                with tokens:
                    read_exact(fd, view, offset)
                    if not known and all_zero(buffer, length):
                        zeros.append(offset)  # list.append is atomic
                    else:
                        name, payload = uploader.prepare(view, known)
                if payload is not None:
                    uploader.write(name, payload)  # no token: mostly waiting for the disk
                if name:
                    refs.append(BlockRef(offset, name))
                blocks.done_bytes += length  # a progress figure: a lost update is harmless
        except BaseException as exc:  # re-raised on the caller's thread
            errors.append(exc)
            blocks.failed.set()

    threads = [
        threading.Thread(target=work, name=f"backup-{index}", daemon=True)
        for index in range(workers)
    ]
    for thread in threads:
        thread.start()
    reported = 0
    try:
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
                if progress is not None and blocks.done_bytes > reported:
                    progress(blocks.done_bytes - reported)
                    reported = blocks.done_bytes
    except BaseException:
        blocks.failed.set()  # the workers stop after the block they hold
        for thread in threads:
            thread.join()
        raise
    if errors:
        raise errors[0]
    if progress is not None:
        progress(size - reported)  # holes and the rest
    refs.sort(key=lambda ref: ref.offset)
    return StoredBlocks(refs, len(zeros), blocks.hole_bytes)
