"""The driver contract: every backupstore driver, against its real server, passes the same tests.

Drivers plug in by fixture name (see targets.py): add `"<scheme>_store_target"` to
STORE_TARGETS and import the fixture in conftest.py; nothing else here changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from longhorn_bi.engine.errors import IntegrityError, LockConflict, NotFound
from longhorn_bi.engine.store.admin import list_backups, remove_backup
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.block_io import BufferPool, _read
from longhorn_bi.engine.store.drivers import StoreDriver, open_store
from longhorn_bi.engine.store.drivers.vfs import VfsStore
from longhorn_bi.engine.store.layout import lock_dir
from longhorn_bi.engine.store.locks import BACKUP_LOCK, DELETION_LOCK, BackupstoreLock
from longhorn_bi.engine.store.restore import restore_backup
from longhorn_bi.engine.store.verify import verify_backup
from tests.store.reference_store import BLOCK, RefImage, make_sparse_file, write_reference_store
from tests.store.s3_server import FaultProxy
from tests.store.targets import StoreTarget

STORE_TARGETS = [
    "vfs_store_target",
    "s3_store_target",
    "azblob_store_target",
]
EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")
TIMES = ("CreatedTime", "CompleteTime")


@pytest.fixture(params=STORE_TARGETS)
def target(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> StoreTarget:
    found: StoreTarget = request.getfixturevalue(request.param)
    for var, value in found.env.items():
        monkeypatch.setenv(var, value)
    return found


@pytest.fixture
def store(target: StoreTarget) -> Iterator[StoreDriver]:
    opened = open_store(target.url)
    yield opened
    opened.close()


def _pattern(seed: int, length: int) -> bytes:
    return hashlib.shake_256(seed.to_bytes(4, "big")).digest(length)


def _image(tmp_path: Path) -> tuple[Path, bytes]:
    """Random, compressible, all-zero, duplicate and short blocks, and holes."""
    chunks = {
        0: _pattern(10, BLOCK),
        BLOCK: (b"text-like line of a config file\n" * 70000)[:BLOCK],
        3 * BLOCK: bytes(BLOCK),
        4 * BLOCK: _pattern(10, BLOCK),
        5 * BLOCK: _pattern(11, 1536),
    }
    path = tmp_path / "image.raw"
    return path, make_sparse_file(path, 5 * BLOCK + 1536, chunks)


def _snapshot(store: StoreDriver) -> dict[str, bytes]:
    """Every object of the store, cfgs without their times."""
    found = {}
    for key in store.walk("backupstore"):
        data = store.read(f"backupstore/{key}")
        if key.endswith(".cfg"):
            doc = json.loads(data)
            data = json.dumps({k: v for k, v in doc.items() if k not in TIMES}).encode()
        found[key] = data
    return found


@pytest.mark.parametrize("compression", ["lz4", "gzip", "none"])
def test_layout_is_byte_for_byte_the_vfs_layout(
    target, store, tmp_path, fast_locks, compression
) -> None:
    """vfs is checked field by field against Longhorn's format in test_compat.py."""
    image, content = _image(tmp_path)
    reference = tmp_path / "reference"
    for url in (target.url, f"vfs://{reference}"):
        backup_image(image, url, "parrot", compression=compression, lock_timings=fast_locks)
    expected = _snapshot(VfsStore(f"vfs://{reference}", reference))
    assert _snapshot(store) == expected
    assert sum(key.endswith(".blk") for key in expected) == 3  # dedup, zeros and holes
    out = tmp_path / "out.raw"
    restore_backup(f"{target.url}?backingImage=parrot", out, lock_timings=fast_locks)
    assert out.read_bytes() == content


def test_a_reference_store_restores_and_verifies(target, store, tmp_path, fast_locks) -> None:
    """The bytes of a store written from the format itself, put there object by object."""
    images = [
        RefImage("ref-lz4", _pattern(1, BLOCK) + bytes(BLOCK) + _pattern(2, 700), [0, 2 * BLOCK]),
        RefImage("ref-gzip", _pattern(3, BLOCK + 5), [0, BLOCK], "gzip"),
        RefImage("ref-raw", _pattern(4, BLOCK), [0], "none"),
    ]
    local = tmp_path / "reference"
    write_reference_store(local, images)
    for path in sorted(local.rglob("*")):
        if path.is_file():
            store.write(path.relative_to(local).as_posix(), path.read_bytes())
    assert [info.name for info in list_backups(target.url)] == ["ref-gzip", "ref-lz4", "ref-raw"]
    for ref in images:
        url = f"{target.url}?backingImage={ref.name}"
        out = tmp_path / f"{ref.name}.img"
        restore_backup(url, out, concurrent_limit=2, lock_timings=fast_locks)
        assert out.read_bytes() == ref.content
        assert verify_backup(url, lock_timings=fast_locks).ok


def test_listing(store) -> None:
    for key in ("l/a", "l/b/c", "l/b/d/e", "l/bb", "lx/other"):
        store.write(key, key.encode())
    assert store.list("l") == store.list("l/") == ["a", "b", "bb"]
    assert store.list("l/b") == ["c", "d"]
    assert store.walk("l") == ["a", "b/c", "b/d/e", "bb"]
    assert store.walk("l/b/") == ["c", "d/e"]
    assert store.list("missing") == [] and store.walk("missing") == []


def test_whole_and_ranged_reads(store) -> None:
    data = os.urandom(3 * BLOCK // 2)
    store.write("r/data", data)
    store.write("r/empty", b"")
    assert store.read("r/data") == data and store.read("r/empty") == b""
    assert store.size("r/data") == len(data) and store.size("r/empty") == 0
    assert store.exists("r/data") and not store.exists("r/missing")
    for read in (store.read, store.size, store.mtime):
        with pytest.raises(NotFound):
            read("r/missing")
    # the bounded read restore and verify use: whole when it fits, -1 (nothing more) if not
    read_into = getattr(store, "read_into", None)
    if read_into is not None:
        for room in (len(data), len(data) + 1, 2 * BLOCK):
            buffer = bytearray(room)
            assert read_into("r/data", buffer) == len(data)
            assert buffer[: len(data)] == data
        assert read_into("r/data", bytearray(len(data) - 1)) == -1
        assert read_into("r/empty", bytearray(16)) == 0
        with pytest.raises(NotFound):
            read_into("r/missing", bytearray(16))
    # a stored block (at most a block and some slack) through the pool; larger is refused
    store.write("r/block", data[:BLOCK])
    pool = BufferPool(1)
    got, pooled = _read(store, "r/block", pool)
    assert bytes(got) == data[:BLOCK]
    pool.put(pooled)
    with pytest.raises(IntegrityError):
        _read(store, "r/data", pool)


def test_writes_are_atomic(store) -> None:
    """Readers see the old object or the new one, never a mix or a part of one."""
    versions = [_pattern(seed, BLOCK + 4096 * seed) for seed in range(4)]
    store.write("w/object", versions[0])
    seen: set[bytes] = set()
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            data = store.read("w/object")
            assert data in versions
            seen.add(hashlib.sha256(data).digest())

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    try:
        for round_ in range(12):
            store.write("w/object", versions[round_ % 4], durable=round_ % 2 == 0)
    finally:
        stop.set()
        for thread in threads:
            thread.join()
    store.sync()
    store.write("w/object", b"short")  # a shorter object leaves nothing of the longer one
    assert store.read("w/object") == b"short" and store.size("w/object") == 5
    assert seen  # the readers ran


def test_deletes(store) -> None:
    for key in ("d/keep", "d/gone", "d/sub/keep"):
        store.write(key, b"x")
    store.delete("d/gone")
    store.delete("d/gone")  # a missing object is not an error
    store.delete("d/never")
    assert not store.exists("d/gone")
    with pytest.raises(NotFound):
        store.read("d/gone")
    assert store.walk("d") == ["keep", "sub/keep"]


def test_locks(store, fast_locks) -> None:
    first = BackupstoreLock(store, BACKUP_LOCK, fast_locks).acquire()
    second = BackupstoreLock(store, BACKUP_LOCK, fast_locks)
    try:
        second.acquire()  # backups and restores share
        stored = sorted(store.list(lock_dir()))
        assert stored == sorted(f"{lock.name}.lck" for lock in (first, second))
        body = json.loads(store.read(f"{lock_dir()}/{first.name}.lck"))
        assert body == {"Name": first.name, "Type": BACKUP_LOCK, "Acquired": True}
        delete = BackupstoreLock(store, DELETION_LOCK, fast_locks)
        with pytest.raises(LockConflict):
            delete.acquire()
    finally:
        first.release()
        second.release()
    assert store.list(lock_dir()) == []


def test_faults_are_retried(target, tmp_path, fast_locks, monkeypatch) -> None:
    """Connection resets, 5xx answers and bodies cut short, repeated until they pass."""
    if not target.endpoint_var:
        pytest.skip("no HTTP transport to put a fault-injecting proxy before")
    image, content = _image(tmp_path)
    payload = os.urandom(BLOCK)
    with FaultProxy(
        target.env[target.endpoint_var], reset_every=5, error_every=7, truncate_every=3
    ) as proxy:
        monkeypatch.setenv(target.endpoint_var, proxy.url)
        store = open_store(target.url)
        try:
            for index in range(4):
                store.write(f"f/{index}", payload)
            for index in range(4):
                assert store.read(f"f/{index}") == payload
                assert store.size(f"f/{index}") == len(payload)
            assert store.list("f") == ["0", "1", "2", "3"]
            store.delete("f/0")
            assert not store.exists("f/0")
        finally:
            store.close()
        result = backup_image(image, target.url, "faulty", concurrency=3, lock_timings=fast_locks)
        out = tmp_path / "out.raw"
        restore_backup(result.url, out, concurrent_limit=3, lock_timings=fast_locks)
        assert verify_backup(result.url, concurrent_limit=2, lock_timings=fast_locks).ok
        assert remove_backup(result.url, lock_timings=fast_locks).deleted_blocks == 3
    assert out.read_bytes() == content
    assert all(proxy.injected[kind] > 0 for kind in ("reset", "error", "truncate"))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=120, check=False, env=env
    )


def test_credentials_never_printed_or_logged(target, tmp_path, fast_locks, caplog) -> None:
    if not target.secrets:
        pytest.skip("this target has no credentials")
    image, content = _image(tmp_path)
    caplog.set_level(logging.DEBUG)  # every logger, every level: nothing may carry a secret
    result = backup_image(image, target.url, "parrot", lock_timings=fast_locks)
    restore_backup(result.url, tmp_path / "out.raw", lock_timings=fast_locks)
    assert verify_backup(result.url, lock_timings=fast_locks).ok
    env = {**os.environ}
    runs = [
        _cli("store", "ls", target.url, "-o", "json", env=env),
        _cli("--debug", "store", "inspect", result.url, env=env),
        _cli("store", "verify", result.url, env=env),
        _cli("--debug", "store", "inspect", f"{target.url}?backingImage=missing", env=env),
    ]
    codes = [0, 0, 0, 1]
    if target.endpoint_var:  # nobody answers: the error names the endpoint, not the keys
        refused = {**env, target.endpoint_var: "http://127.0.0.1:9"}
        runs.append(_cli("--debug", "store", "ls", target.url, env=refused))
        codes.append(1)
        assert "127.0.0.1" in runs[-1].stderr
    assert [run.returncode for run in runs] == codes, [run.stderr for run in runs]
    assert (tmp_path / "out.raw").read_bytes() == content
    texts = [caplog.text, *(run.stdout + run.stderr for run in runs)]
    for secret in target.secrets:
        for text in texts:
            assert secret not in text
