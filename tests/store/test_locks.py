"""The BACKINGIMAGE lock protocol and garbage collection of blocks on `rm`."""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from pathlib import Path

import pytest

from longhorn_bi.engine.errors import LockConflict
from longhorn_bi.engine.store.admin import remove_backup
from longhorn_bi.engine.store.backup import BackupResult, backup_image
from longhorn_bi.engine.store.catalog import load_cfg
from longhorn_bi.engine.store.drivers.vfs import VfsStore
from longhorn_bi.engine.store.layout import block_key, lock_dir
from longhorn_bi.engine.store.locks import LockTimings
from longhorn_bi.engine.store.restore import restore_backup
from longhorn_bi.engine.store.verify import verify_backup
from tests.store.reference_store import BLOCK, RefImage, make_sparse_file, write_reference_store

QUICK_GIVE_UP = LockTimings(check_wait=0.1, check_interval=0.1, max_wait=0.8)


class SlowStore(VfsStore):
    def write(
        self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        if key.endswith(".blk"):
            time.sleep(0.05)
        super().write(key, data, durable=durable)


def _image(tmp_path: Path, blocks: int, seed: int = 0) -> tuple[Path, bytes]:
    chunks = {i * BLOCK: hashlib.shake_256(bytes([seed, i])).digest(BLOCK) for i in range(blocks)}
    path = tmp_path / f"image-{seed}.raw"
    return path, make_sparse_file(path, blocks * BLOCK, chunks)


def _foreign_lock(root: Path, lock_type: int, *, acquired: bool, age: float = 0.0) -> Path:
    folder = root / lock_dir()
    folder.mkdir(parents=True, exist_ok=True)
    name = "lock-00000000000000ff"
    path = folder / f"{name}.lck"
    path.write_text(json.dumps({"Name": name, "Type": lock_type, "Acquired": acquired}))
    if age:
        old = time.time() - age
        os.utime(path, (old, old))
    return path


def test_rm_during_a_running_backup_gives_way(tmp_path) -> None:
    image, content = _image(tmp_path, 24)
    root = tmp_path / "store"
    target = f"vfs://{root}"
    store = SlowStore(target, root)
    results: list[BackupResult] = []
    timings = LockTimings(check_wait=0.1, check_interval=0.1, max_wait=5)
    worker = threading.Thread(
        target=lambda: results.append(
            backup_image(image, target, "parrot", concurrency=1, store=store, lock_timings=timings)
        )
    )
    worker.start()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # wait until the backup holds its lock
        locks = list((root / lock_dir()).glob("*.lck")) if (root / lock_dir()).exists() else []
        if any(json.loads(p.read_text()).get("Acquired") for p in locks if p.stat().st_size):
            break
        time.sleep(0.01)
    with pytest.raises(LockConflict):
        remove_backup(f"{target}?backingImage=parrot", lock_timings=QUICK_GIVE_UP)
    worker.join(timeout=60)
    assert results and not results[0].already
    cfg = load_cfg(store, "parrot")
    assert cfg is not None and cfg.complete
    assert verify_backup(results[0].url, lock_timings=timings).ok
    out = tmp_path / "out.raw"
    restore_backup(results[0].url, out, lock_timings=timings)
    assert out.read_bytes() == content
    assert remove_backup(results[0].url, lock_timings=QUICK_GIVE_UP).deleted_blocks == 24


def test_backup_gives_way_to_an_active_delete(tmp_path) -> None:
    image, _ = _image(tmp_path, 2)
    root = tmp_path / "store"
    _foreign_lock(root, 2, acquired=True)
    with pytest.raises(LockConflict):
        backup_image(image, f"vfs://{root}", "parrot", lock_timings=QUICK_GIVE_UP)
    cfg = load_cfg(VfsStore(f"vfs://{root}", root), "parrot")
    assert cfg is None or not cfg.complete  # never claims completeness without the lock
    assert len(list((root / lock_dir()).glob("*.lck"))) == 1  # ours was removed


def test_expired_delete_lock_is_ignored(tmp_path, fast_locks) -> None:
    image, _ = _image(tmp_path, 2)
    root = tmp_path / "store"
    _foreign_lock(root, 2, acquired=True, age=200)
    result = backup_image(image, f"vfs://{root}", "parrot", lock_timings=fast_locks)
    assert not result.already and result.block_count == 2


def test_backup_waits_for_a_running_delete_before_it_reads_anything(tmp_path) -> None:
    """lock.go: the lock comes before any read, so a delete that holds it finishes first;
    its collected blocks are stored again, never assumed present."""
    image, content = _image(tmp_path, 3)
    root = tmp_path / "store"
    target = f"vfs://{root}"
    first = backup_image(image, target, "first", lock_timings=LockTimings(check_wait=0.01))
    blocks = sorted((root / "backupstore/backing-images/blocks").rglob("*.blk"))
    lock = _foreign_lock(root, 2, acquired=True)
    seen: list[list[str]] = []

    def delete_runs() -> None:  # a delete that collects a block, then finishes
        time.sleep(0.3)
        seen.append(sorted(p.name for p in (root / lock_dir()).glob("*.lck")))
        blocks[0].unlink()
        lock.unlink()

    collector = threading.Thread(target=delete_runs)
    collector.start()
    timings = LockTimings(check_wait=0.05, check_interval=0.1, max_wait=5)
    second = backup_image(image, target, "second", lock_timings=timings)
    collector.join()
    assert seen == [[lock.name]]  # our waiting lock was removed at once after each try
    assert second.new_blocks == 1  # the collected block was stored again
    assert blocks[0].exists()
    assert verify_backup(second.url, lock_timings=timings).ok
    assert first.checksum == second.checksum == hashlib.sha512(content).hexdigest()


def test_in_progress_cfg_of_a_live_writer_is_not_overwritten(tmp_path, fast_locks) -> None:
    image, _ = _image(tmp_path, 2)
    root = tmp_path / "store"
    write_reference_store(root, [RefImage("parrot", bytes(BLOCK), [], complete=False)])
    cfg_path = root / "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    before = cfg_path.read_bytes()
    writer = _foreign_lock(root, 1, acquired=True)  # another backup, still refreshing its lock
    with pytest.raises(LockConflict, match="may still be writing"):
        backup_image(image, f"vfs://{root}", "parrot", lock_timings=fast_locks)
    assert cfg_path.read_bytes() == before
    assert [p.name for p in (root / lock_dir()).glob("*.lck")] == [writer.name]
    writer.unlink()  # its writer is gone: the backup is redone
    result = backup_image(image, f"vfs://{root}", "parrot", lock_timings=fast_locks)
    cfg = load_cfg(VfsStore(f"vfs://{root}", root), "parrot")
    assert not result.already and cfg is not None and cfg.complete


def _ref_store(root: Path) -> dict[str, RefImage]:
    shared = hashlib.shake_256(b"shared").digest(BLOCK)
    own = hashlib.shake_256(b"own").digest(BLOCK)
    images = {
        "alpha": RefImage("alpha", shared + own, [0, BLOCK]),
        "beta": RefImage("beta", shared, [0]),
    }
    write_reference_store(root, list(images.values()))
    return images


def test_rm_collects_only_unreferenced_blocks(tmp_path, fast_locks) -> None:
    root = tmp_path / "store"
    images = _ref_store(root)
    result = remove_backup(f"vfs://{root}?backingImage=alpha", lock_timings=fast_locks)
    assert (result.deleted_blocks, result.kept_blocks, result.gc_skipped) == (1, 1, "")
    assert not (root / "backupstore/backing-images/backing-images/alpha").exists()
    out = tmp_path / "beta.raw"
    restore_backup(f"vfs://{root}?backingImage=beta", out, lock_timings=fast_locks)
    assert out.read_bytes() == images["beta"].content


def test_rm_keeps_blocks_while_another_backup_is_in_progress(tmp_path, fast_locks) -> None:
    root = tmp_path / "store"
    _ref_store(root)
    write_reference_store(root, [RefImage("gamma", bytes(BLOCK), [], complete=False)])
    result = remove_backup(f"vfs://{root}?backingImage=alpha", lock_timings=fast_locks)
    assert result.deleted_blocks == 0 and "'gamma' is in progress" in result.gc_skipped
    store = VfsStore(f"vfs://{root}", root)
    own = hashlib.sha512(hashlib.shake_256(b"own").digest(BLOCK)).hexdigest()[:64]
    assert store.exists(block_key(own))


def test_lock_wait_is_longhorns_except_on_a_local_file_system(tmp_path) -> None:
    from longhorn_bi.engine.backup_url import parse_target
    from longhorn_bi.engine.store.drivers.nfs import open_nfs_store
    from longhorn_bi.engine.store.drivers.vfs import fs_type
    from longhorn_bi.engine.store.locks import BackupstoreLock

    local = VfsStore(f"vfs://{tmp_path}", tmp_path)
    expected = 0.2 if fs_type(tmp_path) in ("ext4", "xfs", "btrfs", "tmpfs") else 2.0
    assert BackupstoreLock(local, 1).timings.check_wait == expected
    nfs = open_nfs_store(parse_target("nfs://server:/export"), mount_point=str(tmp_path))
    assert BackupstoreLock(nfs, 1).timings.check_wait == 2.0  # NFS caches attributes
    assert BackupstoreLock(local, 1, LockTimings(check_wait=1.5)).timings.check_wait == 1.5
