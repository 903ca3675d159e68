"""The fast paths of the data pipeline: direct reads and writes, the image-hash thread, and
the checks that keep them as safe as the plain paths."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

import pytest

from longhorn_bi.engine.errors import BackupstoreError
from longhorn_bi.engine.store import backup_pipeline, direct_write
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.backup_pipeline import (
    CpuTokens,
    ImageHash,
    check_unchanged,
    data_extents,
)
from longhorn_bi.engine.store.block_writer import DirectOutput
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.layout import block_name
from longhorn_bi.engine.store.locks import LockTimings
from longhorn_bi.engine.store.restore import restore_backup
from tests.store.reference_store import BLOCK, make_sparse_file


def _direct_or_skip(path: Path) -> None:
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | direct_write.O_DIRECT, 0o600))
    except OSError as exc:
        pytest.skip(f"no O_DIRECT on the test folder's file system: {exc.strerror}")
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.parametrize("length", [1, 4096, 4097, BLOCK - 512, BLOCK + 64 * 1024])
def test_direct_read_returns_the_exact_content_from_any_start(tmp_path, length) -> None:
    _direct_or_skip(tmp_path / "probe")
    path = tmp_path / "object"
    data = hashlib.shake_256(length.to_bytes(4, "big")).digest(length)
    path.write_bytes(data)
    buffers = direct_write.AlignedBuffers(BLOCK + 64 * 1024)
    for start in (0, 4096):
        fd = os.open(path, os.O_RDONLY)
        try:
            out = bytearray(length)
            view = memoryview(out)
            got = direct_write.read_direct(fd, view, start, buffers) if start < length else 0
            assert got == max(0, length - start)
            assert out[start:] == data[start:]
        finally:
            os.close(fd)


def test_direct_read_refuses_an_unaligned_start(tmp_path) -> None:
    path = tmp_path / "object"
    path.write_bytes(b"x" * 10_000)
    fd = os.open(path, os.O_RDONLY)
    try:
        view = memoryview(bytearray(10_000))
        assert direct_write.read_direct(fd, view, 100, direct_write.AlignedBuffers(16384)) == 0
    finally:
        os.close(fd)


def test_cached_read_then_the_rest_gives_the_whole_object(tmp_path) -> None:
    root = tmp_path / "store"
    store = open_store(f"vfs://{root}")
    data = hashlib.shake_256(b"cached").digest(BLOCK + 12345)
    store.write("blocks/x.blk", data, durable=False)  # direct where it can: not cached
    store.sync()
    buffer = bytearray(BLOCK + 64 * 1024)
    assert store.read_into("blocks/x.blk", buffer) == len(data)  # type: ignore[attr-defined]
    assert buffer[: len(data)] == data
    (root / "blocks" / "x.blk").read_bytes()  # now in the page cache
    buffer[:] = bytes(len(buffer))
    assert store.read_into("blocks/x.blk", buffer) == len(data)  # type: ignore[attr-defined]
    assert buffer[: len(data)] == data


def test_direct_output_writes_aligned_runs_and_the_cache_the_tail(tmp_path) -> None:
    path = tmp_path / "out.raw"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, 3 * 4096 + 512)
        direct = DirectOutput.open(str(path))
        if direct is None:
            pytest.skip("no O_DIRECT on the test folder's file system")
        try:
            assert direct.takes(4096, 8192)
            assert not direct.takes(4096, 512)  # the short tail
            assert not direct.takes(512, 4096)
            direct.write(memoryview(b"a" * 8192), 4096)
        finally:
            direct.close()
    finally:
        os.close(fd)
    assert path.read_bytes() == bytes(4096) + b"a" * 8192 + bytes(512)


def test_restore_of_an_image_with_a_short_tail_is_exact(tmp_path, fast_locks) -> None:
    size = 2 * BLOCK + 3 * 512  # the last block is not a multiple of a page
    chunks = {0: hashlib.shake_256(b"a").digest(BLOCK), 2 * BLOCK: b"\x07" * (3 * 512)}
    image = tmp_path / "image.raw"
    content = make_sparse_file(image, size, chunks)
    result = backup_image(image, f"vfs://{tmp_path / 'store'}", "parrot", lock_timings=fast_locks)
    out = tmp_path / "restored.raw"
    restore_backup(result.url, out, lock_timings=fast_locks)
    assert out.read_bytes() == content
    assert result.checksum == hashlib.sha512(content).hexdigest()


def test_image_hash_covers_holes_and_data(tmp_path) -> None:
    size = 5 * BLOCK + 4096
    chunks = {BLOCK: b"\x01" * 4096, 4 * BLOCK + 8192: b"\x02" * 100}
    image = tmp_path / "image.raw"
    content = make_sparse_file(image, size, chunks)
    fd = os.open(image, os.O_RDONLY)
    try:
        whole = ImageHash(fd, size, data_extents(fd, size))
        assert whole.result() == hashlib.sha512(content).hexdigest()
    finally:
        os.close(fd)


def test_a_write_to_the_image_during_the_backup_is_refused(tmp_path) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\x01" * 8192)
    os.utime(image, (1_000_000_000, 1_000_000_000))  # a write now moves mtime whatever the tick
    fd = os.open(image, os.O_RDONLY)
    try:
        whole = ImageHash(fd, 8192, data_extents(fd, 8192))
        whole.result()
        check_unchanged(fd, whole.stamp)  # nothing wrote it
        with open(image, "r+b") as handle:  # same size, new bytes: mtime and ctime move
            handle.write(b"\x02")
        with pytest.raises(BackupstoreError, match="changed while it was backed up"):
            check_unchanged(fd, whole.stamp)
    finally:
        os.close(fd)


def test_cpu_tokens_keep_a_core_for_the_hash_until_it_is_done() -> None:
    tokens = CpuTokens(2)
    tokens.__enter__()
    assert not tokens.try_enter()  # one core computes blocks while the hash runs
    tokens.widen()
    assert tokens.try_enter()  # both once it is done
    single = CpuTokens(1)
    single.__enter__()  # one core: the workers still get one
    assert not single.try_enter()


def test_the_hash_waits_for_slow_workers_and_the_backup_is_exact(
    tmp_path, fast_locks, monkeypatch
) -> None:
    from longhorn_bi.engine.store import backup_pipeline

    monkeypatch.setattr(backup_pipeline, "MAX_LEAD", 2 * BLOCK)  # pauses after two blocks
    monkeypatch.setattr(backup_pipeline, "RESUME_LEAD", BLOCK)
    chunks = {i * BLOCK: hashlib.shake_256(bytes([i])).digest(BLOCK) for i in range(12)}
    del chunks[5 * BLOCK]  # a hole in the middle
    image = tmp_path / "image.raw"
    content = make_sparse_file(image, 12 * BLOCK, chunks)
    target = f"vfs://{tmp_path / 'store'}"
    result = backup_image(image, target, "parrot", concurrency=1, lock_timings=fast_locks)
    assert result.checksum == hashlib.sha512(content).hexdigest()
    assert (result.block_count, result.hole_bytes) == (11, BLOCK)
    out = tmp_path / "restored.raw"
    restore_backup(result.url, out, lock_timings=fast_locks)
    assert out.read_bytes() == content


def test_fully_cached_tells_a_cached_file_from_a_dropped_one(tmp_path) -> None:
    path = tmp_path / "object"
    path.write_bytes(hashlib.shake_256(b"c").digest(BLOCK))
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # clean pages, which the advice below can drop
        os.read(fd, BLOCK)
        if not direct_write.fully_cached(fd, BLOCK):
            pytest.skip("cachestat(2) is not available here (Linux 6.5+, not filtered)")
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        assert not direct_write.fully_cached(fd, BLOCK)
    finally:
        os.close(fd)


def test_block_names_are_computed_during_the_lock_wait(tmp_path, monkeypatch) -> None:
    # Longhorn's lock wait leaves a core idle: the blocks are named then, once each, and the
    # workers that store them after the lock use those names.
    chunks = {i * BLOCK: hashlib.shake_256(bytes([i])).digest(BLOCK) for i in (0, 1, 3)}
    chunks[4 * BLOCK] = bytes(BLOCK)  # written, all zero: never named
    image = tmp_path / "image.raw"
    content = make_sparse_file(image, 5 * BLOCK, chunks)
    threads: list[str] = []
    real = block_name

    def recorded(data: backup_pipeline.Payload) -> str:
        threads.append(threading.current_thread().name)
        return real(data)

    monkeypatch.setattr(backup_pipeline, "block_name", recorded)
    slow = LockTimings(check_wait=1.0, check_interval=0.1, max_wait=5.0)
    result = backup_image(image, f"vfs://{tmp_path / 'store'}", "parrot", lock_timings=slow)
    assert threads == ["head-start"] * 3
    assert result.block_count == 3 and result.zero_blocks == 1
    out = tmp_path / "out.raw"
    restore_backup(result.url, out, lock_timings=slow, verify_blocks=True)
    assert out.read_bytes() == content
