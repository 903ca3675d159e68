"""Which checks a restore runs: block names only without a known image SHA-512 or with
--verify-blocks; otherwise the whole-image check, and a diagnosis pass that names the bad
blocks after a mismatch. Real files (vfs) and moto."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import lz4.frame
import pytest

from longhorn_bi.engine.errors import IntegrityError
from longhorn_bi.engine.store import block_io
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.catalog import require_cfg
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.layout import block_key, block_name
from longhorn_bi.engine.store.restore import restore_backup
from tests.store.reference_store import BLOCK, make_sparse_file
from tests.store.s3_server import moto_client

DIAGNOSED = "does not match its SHA-512; "
PER_BLOCK = "does not match its name"


def _image(tmp_path: Path) -> tuple[Path, bytes]:
    chunks = {i * BLOCK: hashlib.shake_256(bytes([i])).digest(BLOCK) for i in range(4)}
    image = tmp_path / "image.raw"
    return image, make_sparse_file(image, 5 * BLOCK, chunks)


def _keys(target: str, offsets: list[int]) -> list[str]:
    store = open_store(target)
    try:
        refs = {r.offset: r for r in require_cfg(store, "parrot").blocks}
    finally:
        store.close()
    return [block_key(refs[offset].checksum) for offset in offsets]


def _flip(raw: bytes) -> bytes:
    changed = bytearray(raw)
    changed[len(changed) // 2] ^= 0xFF
    return bytes(changed)


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if p.name.startswith(".out.raw")]


@pytest.fixture
def vfs_backup(tmp_path: Path, fast_locks) -> tuple[str, Path, bytes]:
    image, content = _image(tmp_path)
    root = tmp_path / "store"
    url = backup_image(image, f"vfs://{root}", "parrot", lock_timings=fast_locks).url
    return url, root, content


def _corrupt(root: Path, offsets: list[int]) -> list[str]:
    keys = _keys(f"vfs://{root}", offsets)
    for key in keys:
        path = root / key
        path.write_bytes(_flip(path.read_bytes()))
    return keys


class _NameCounter:
    """Counts the block-name SHA-512s a restore computes (the real function runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        real = block_name

        def counted(data: block_io.Data) -> str:
            self.calls += 1
            return real(data)

        monkeypatch.setattr(block_io, "block_name", counted)


def test_known_checksum_restores_without_block_names(vfs_backup, tmp_path, fast_locks, monkeypatch):
    url, _, content = vfs_backup
    names = _NameCounter(monkeypatch)
    out = tmp_path / "out.raw"
    restore_backup(url, out, concurrent_limit=3, lock_timings=fast_locks)
    assert out.read_bytes() == content
    assert names.calls == 0
    restore_backup(url, out, concurrent_limit=3, lock_timings=fast_locks, verify_blocks=True)
    assert out.read_bytes() == content
    assert names.calls == 4  # one per stored block


def test_mismatch_names_every_bad_block_and_leaves_nothing(vfs_backup, tmp_path, fast_locks):
    url, root, _ = vfs_backup
    keys = _corrupt(root, [BLOCK, 3 * BLOCK])
    out = tmp_path / "out.raw"
    out.write_bytes(b"previous file")
    with pytest.raises(IntegrityError, match=DIAGNOSED) as caught:
        restore_backup(url, out, concurrent_limit=2, lock_timings=fast_locks)
    message = caught.value.message
    assert "2 block(s)" in message
    assert f"offset {BLOCK} ({keys[0]})" in message and f"offset {3 * BLOCK} ({keys[1]})" in message
    assert "offset 0 " not in message and f"offset {2 * BLOCK} " not in message
    assert out.read_bytes() == b"previous file"
    assert _leftovers(tmp_path) == []


def test_without_a_checksum_each_block_is_checked(vfs_backup, tmp_path, fast_locks):
    url, root, _ = vfs_backup
    cfg = root / "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    recorded = require_cfg(open_store(f"vfs://{root}"), "parrot").checksum
    cfg.write_text(cfg.read_text().replace(recorded, ""))
    _corrupt(root, [2 * BLOCK])
    out = tmp_path / "out.raw"
    with pytest.raises(IntegrityError, match=f"offset {2 * BLOCK} .*{PER_BLOCK}"):
        restore_backup(url, out, lock_timings=fast_locks)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_verify_blocks_stops_at_the_bad_block(vfs_backup, tmp_path, fast_locks):
    url, root, _ = vfs_backup
    _corrupt(root, [0])
    out = tmp_path / "out.raw"
    with pytest.raises(IntegrityError, match=f"offset 0 .*{PER_BLOCK}"):
        restore_backup(url, out, lock_timings=fast_locks, verify_blocks=True)
    assert not out.exists() and _leftovers(tmp_path) == []


def test_raw_block_that_also_decodes_as_lz4_is_restored(tmp_path, fast_locks):
    # A raw block starting with a whole LZ4 frame decodes to other bytes: only its name
    # tells which is right, so the first copy mismatches and the diagnosis copy is right.
    block = lz4.frame.compress(b"x" * 1000)
    block += os.urandom(BLOCK - len(block))
    image = tmp_path / "image.raw"
    content = make_sparse_file(image, 2 * BLOCK, {0: os.urandom(BLOCK), BLOCK: block})
    target = f"vfs://{tmp_path / 'store'}"
    url = backup_image(image, target, "parrot", compression="none", lock_timings=fast_locks).url
    out = tmp_path / "out.raw"
    result = restore_backup(url, out, lock_timings=fast_locks)
    assert out.read_bytes() == content
    assert result.checksum == hashlib.sha512(content).hexdigest()


def test_corrupt_block_on_s3_is_named(tmp_path, s3_bucket, fast_locks, moto_endpoint) -> None:
    image, _ = _image(tmp_path)
    target = f"s3://{s3_bucket}@us-east-1/backups/"
    url = backup_image(image, target, "parrot", concurrency=3, lock_timings=fast_locks).url
    client = moto_client(moto_endpoint)
    (key,) = _keys(target, [2 * BLOCK])
    body = client.get_object(Bucket=s3_bucket, Key=f"backups/{key}")["Body"].read()
    client.put_object(Bucket=s3_bucket, Key=f"backups/{key}", Body=_flip(body))
    out = tmp_path / "out.raw"
    with pytest.raises(IntegrityError, match=f"{DIAGNOSED}.*offset {2 * BLOCK} \\({key}\\)"):
        restore_backup(url, out, concurrent_limit=4, lock_timings=fast_locks)
    assert not out.exists() and _leftovers(tmp_path) == []
    with pytest.raises(IntegrityError, match=f"offset {2 * BLOCK} .*{PER_BLOCK}"):
        restore_backup(url, out, concurrent_limit=4, lock_timings=fast_locks, verify_blocks=True)
    assert not out.exists() and _leftovers(tmp_path) == []
