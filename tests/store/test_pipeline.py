"""The threads that move blocks: restore's writer, backup's reader, the vfs write path."""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

import pytest

from longhorn_bi.engine.errors import BackupstoreError
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.block_io import BufferPool
from longhorn_bi.engine.store.block_writer import OrderedWriter
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.layout import block_key, block_name
from longhorn_bi.engine.store.restore import restore_backup
from tests.store.reference_store import BLOCK, make_sparse_file


def _image(tmp_path: Path, blocks: int) -> tuple[Path, bytes]:
    chunks = {i * BLOCK: hashlib.shake_256(bytes([i])).digest(BLOCK) for i in range(blocks)}
    image = tmp_path / "image.raw"
    return image, make_sparse_file(image, blocks * BLOCK, chunks)


def test_a_failed_write_leaves_nothing_at_output_and_keeps_the_old_file(
    tmp_path, fast_locks, monkeypatch
) -> None:
    image, _ = _image(tmp_path, 6)
    target = f"vfs://{tmp_path / 'store'}"
    url = backup_image(image, target, "parrot", lock_timings=fast_locks).url
    out = tmp_path / "out" / "restored.raw"
    out.parent.mkdir()
    out.write_bytes(b"the old file")
    real_pwrite = os.pwrite
    calls = []

    def full_disk(fd: int, data: memoryview, offset: int) -> int:
        calls.append(offset)
        if len(calls) >= 3:  # the disk fills up in the middle of the restore
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", full_disk)
    with pytest.raises(BackupstoreError) as caught:
        restore_backup(url, out, concurrent_limit=2, lock_timings=fast_locks)
    assert caught.value.message == ("cannot write the restored image: No space left on device")
    assert "free space" in (caught.value.hint or "")
    assert out.read_bytes() == b"the old file"
    assert sorted(p.name for p in out.parent.iterdir()) == ["restored.raw"]  # no .part left


def test_restore_writes_every_block_once_in_offset_order(tmp_path, fast_locks, monkeypatch) -> None:
    image, content = _image(tmp_path, 5)
    url = backup_image(image, f"vfs://{tmp_path / 'store'}", "parrot", lock_timings=fast_locks).url
    real_pwrite = os.pwrite
    offsets: list[int] = []

    def recording(fd: int, data: memoryview, offset: int) -> int:
        offsets.append(offset)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", recording)
    out = tmp_path / "restored.raw"
    restore_backup(url, out, concurrent_limit=4, lock_timings=fast_locks)
    assert out.read_bytes() == content
    assert offsets == [i * BLOCK for i in range(5)]


def test_writer_keeps_returning_buffers_after_a_failure(tmp_path) -> None:
    pool = BufferPool(1)
    path = tmp_path / "target"
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o600)  # read-only: every write fails
    try:
        writer = OrderedWriter(fd, pool, 1, "the test file")
        for offset in range(0, 4 * BLOCK, BLOCK):
            buffer = pool.get()  # the only buffer: it must come back after each failure
            try:
                writer.put(offset, memoryview(buffer)[:16], buffer)
            except BackupstoreError:
                pool.put(buffer)
        with pytest.raises(BackupstoreError, match="cannot write the test file: Bad file"):
            writer.close()
    finally:
        os.close(fd)
    assert path.stat().st_size == 0


def test_writer_writes_what_it_is_given(tmp_path) -> None:
    pool = BufferPool(2)
    path = tmp_path / "target"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.ftruncate(fd, 3 * 4096)
        writer = OrderedWriter(fd, pool, 2, "the test file")
        writer.put(2 * 4096, b"c" * 4096, None)
        writer.put(0, bytearray(b"a" * 4096), None)
        writer.close()
    finally:
        os.close(fd)
    assert path.read_bytes() == b"a" * 4096 + bytes(4096) + b"c" * 4096


def test_all_zero_blocks_and_a_short_zero_tail_are_hashed_not_stored(tmp_path, fast_locks) -> None:
    data = hashlib.shake_256(b"x").digest(BLOCK)
    image = tmp_path / "image.raw"
    # data, a written (not sparse) zero block, data, then a short written zero tail
    image.write_bytes(data + bytes(BLOCK) + data[::-1] + bytes(4096))
    result = backup_image(image, f"vfs://{tmp_path / 'store'}", "parrot", lock_timings=fast_locks)
    assert result.zero_blocks == 2
    assert result.block_count == 2
    assert result.checksum == hashlib.sha512(image.read_bytes()).hexdigest()
    out = tmp_path / "restored.raw"
    restore_backup(result.url, out, lock_timings=fast_locks)
    assert out.read_bytes() == image.read_bytes()


def test_a_short_last_block_with_data_is_stored(tmp_path, fast_locks) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(bytes(BLOCK) + bytes(4095) + b"\x01")
    result = backup_image(image, f"vfs://{tmp_path / 'store'}", "parrot", lock_timings=fast_locks)
    assert (result.zero_blocks, result.block_count) == (1, 1)
    store = open_store(f"vfs://{tmp_path / 'store'}")
    assert store.exists(block_key(block_name(bytes(4095) + b"\x01")))


def test_vfs_write_makes_again_a_folder_that_rm_dropped(tmp_path) -> None:
    store = open_store(f"vfs://{tmp_path / 'store'}")
    store.write("a/b/one", b"1")
    store.delete("a/b/one")  # drops a/b and a, which the driver had made
    assert not (tmp_path / "store" / "a").exists()
    store.write("a/b/two", b"2")
    assert (tmp_path / "store" / "a" / "b" / "two").read_bytes() == b"2"
    assert sorted(os.listdir(tmp_path / "store" / "a" / "b")) == ["two"]  # no temporary left
    assert oct((tmp_path / "store" / "a" / "b" / "two").stat().st_mode & 0o777) == "0o644"


def test_vfs_failed_write_leaves_no_temporary(tmp_path) -> None:
    root = tmp_path / "store"
    store = open_store(f"vfs://{root}")
    (root / "a").mkdir(parents=True)
    (root / "a" / "b").mkdir()  # a folder where the object should go: the rename fails
    with pytest.raises(BackupstoreError, match="cannot write a/b in"):
        store.write("a/b", b"data")
    assert os.listdir(root / "a") == ["b"]


@pytest.mark.parametrize("length", [3, 64 * 1024, 64 * 1024 + 1, BLOCK, BLOCK + 4097])
def test_vfs_deferred_writes_keep_exact_content_size_and_mode(tmp_path, length) -> None:
    root = tmp_path / "store"
    store = open_store(f"vfs://{root}")
    data = hashlib.shake_256(length.to_bytes(4, "big")).digest(length)
    store.write("blocks/ab/cd/x.blk", data, durable=False)
    store.sync()
    path = root / "blocks" / "ab" / "cd" / "x.blk"
    assert path.read_bytes() == data
    assert oct(path.stat().st_mode & 0o777) == "0o644"
    assert os.listdir(path.parent) == ["x.blk"]


def test_direct_write_pads_then_truncates_to_the_exact_length(tmp_path) -> None:
    from longhorn_bi.engine.store import direct_write

    path = tmp_path / "direct"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | direct_write.O_DIRECT, 0o600)
    except OSError as exc:
        pytest.skip(f"no O_DIRECT on the test folder's file system: {exc.strerror}")
    data = hashlib.shake_256(b"direct").digest(100_001)  # not a multiple of 4096
    try:
        direct_write.write_direct(fd, data, direct_write.AlignedBuffers(BLOCK))
    finally:
        os.close(fd)
    assert path.read_bytes() == data


def test_zero_runs_inside_a_block_are_left_as_holes(tmp_path, fast_locks) -> None:
    from tests.store.reference_store import allocated_bytes

    half = BLOCK // 2
    data = hashlib.shake_256(b"half").digest(half)
    image = tmp_path / "image.raw"
    image.write_bytes(bytes(half) + data + data + bytes(half))  # 2 blocks, each half zeros
    result = backup_image(image, f"vfs://{tmp_path / 'store'}", "parrot", lock_timings=fast_locks)
    assert (result.block_count, result.zero_blocks) == (2, 0)  # both blocks are stored
    out = tmp_path / "restored.raw"
    restore_backup(result.url, out, lock_timings=fast_locks)
    assert out.read_bytes() == image.read_bytes()
    assert allocated_bytes(out) <= 2 * half + 64 * 1024  # the zero halves stay holes


def test_data_runs_skip_only_whole_aligned_zero_chunks() -> None:
    from longhorn_bi.engine.store.block_writer import ZERO_RUN, data_runs

    block = bytearray(BLOCK)
    assert data_runs(block) == []
    block[ZERO_RUN + 5] = 1  # second chunk
    block[-1] = 1  # last chunk
    assert data_runs(block) == [(ZERO_RUN, 2 * ZERO_RUN), (BLOCK - ZERO_RUN, BLOCK)]
    block[2 * ZERO_RUN] = 1  # third chunk joins the second
    assert data_runs(memoryview(block)) == [(ZERO_RUN, 3 * ZERO_RUN), (BLOCK - ZERO_RUN, BLOCK)]
    assert data_runs(bytes(1000)) == [(0, 1000)]  # a short tail is written as it is
