"""Corrupt, missing and mismatching data is named and never leaves a file behind."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from longhorn_bi.engine.errors import IntegrityError, InvalidBackupURL, InvalidInput, NotFound
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.catalog import require_cfg
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.layout import block_key
from longhorn_bi.engine.store.restore import restore_backup
from longhorn_bi.engine.store.verify import verify_backup
from tests.store.reference_store import BLOCK, make_sparse_file


def _backup(tmp_path: Path, fast_locks) -> tuple[str, Path, bytes]:
    chunks = {i * BLOCK: hashlib.shake_256(bytes([i])).digest(BLOCK) for i in range(4)}
    image = tmp_path / "image.raw"
    content = make_sparse_file(image, 4 * BLOCK, chunks)
    target = f"vfs://{tmp_path / 'store'}"
    return (
        backup_image(image, target, "parrot", lock_timings=fast_locks).url,
        tmp_path / "store",
        content,
    )


def _block_path(root: Path, offset: int) -> Path:
    store = open_store(f"vfs://{root}")
    ref = next(r for r in require_cfg(store, "parrot").blocks if r.offset == offset)
    return root / block_key(ref.checksum)


def test_corrupt_block_is_named_by_verify_and_restore(tmp_path, fast_locks) -> None:
    url, root, _ = _backup(tmp_path, fast_locks)
    path = _block_path(root, 2 * BLOCK)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))

    result = verify_backup(url, lock_timings=fast_locks)
    assert not result.ok
    assert [offset for offset, _ in result.bad_blocks] == [2 * BLOCK]

    out = tmp_path / "out.raw"
    with pytest.raises(IntegrityError, match=f"offset {2 * BLOCK}"):
        restore_backup(url, out, concurrent_limit=3, lock_timings=fast_locks)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.raw")] == []


def test_missing_block_is_named(tmp_path, fast_locks) -> None:
    url, root, _ = _backup(tmp_path, fast_locks)
    _block_path(root, BLOCK).unlink()
    result = verify_backup(url, lock_timings=fast_locks)
    assert result.bad_blocks and result.bad_blocks[0][0] == BLOCK
    assert "missing" in result.bad_blocks[0][1]
    out = tmp_path / "out.raw"
    with pytest.raises(IntegrityError, match=f"offset {BLOCK} .*missing"):
        restore_backup(url, out, lock_timings=fast_locks)
    assert not out.exists()


def test_block_swapped_for_another_valid_block_is_caught(tmp_path, fast_locks) -> None:
    url, root, _ = _backup(tmp_path, fast_locks)
    _block_path(root, 0).write_bytes(_block_path(root, BLOCK).read_bytes())
    result = verify_backup(url, lock_timings=fast_locks)
    assert [offset for offset, _ in result.bad_blocks] == [0]


def test_wrong_expected_checksum_leaves_no_file_and_keeps_the_old_one(tmp_path, fast_locks) -> None:
    url, _, content = _backup(tmp_path, fast_locks)
    out = tmp_path / "out.raw"
    out.write_bytes(b"previous good file")
    with pytest.raises(IntegrityError, match="does not match --checksum"):
        restore_backup(url, out, checksum="ab" * 64, lock_timings=fast_locks)
    assert out.read_bytes() == b"previous good file"
    good = restore_backup(
        url, out, checksum=hashlib.sha512(content).hexdigest(), lock_timings=fast_locks
    )
    assert out.read_bytes() == content and good.checksum == hashlib.sha512(content).hexdigest()


def test_tampered_cfg_checksum_fails_restore(tmp_path, fast_locks) -> None:
    url, root, _ = _backup(tmp_path, fast_locks)
    cfg = root / "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    text = cfg.read_text()
    recorded = require_cfg(open_store(f"vfs://{root}"), "parrot").checksum
    cfg.write_text(text.replace(recorded, "0" * 128))
    with pytest.raises(IntegrityError, match="recorded Checksum"):
        restore_backup(url, tmp_path / "out.raw", lock_timings=fast_locks)
    assert not (tmp_path / "out.raw").exists()
    assert not verify_backup(url, lock_timings=fast_locks).ok


@pytest.mark.parametrize(
    "name", ["../escape", "a/b", "x\x00y", "UPPER", "", "-lead", "a", "name with space", ".."]
)
def test_invalid_backup_names_are_refused(tmp_path, fast_locks, name) -> None:
    image = tmp_path / "image.raw"
    image.write_bytes(b"\1" * 4096)
    with pytest.raises(InvalidInput):
        backup_image(image, f"vfs://{tmp_path / 'store'}", name, lock_timings=fast_locks)
    assert not (tmp_path / "store").exists()


@pytest.mark.parametrize(
    "url",
    [
        "vfs:///tmp/../etc?backingImage=parrot",
        "vfs:///tmp/x?backingImage=../parrot",
        "vfs:///tmp/x?backingImage=a%2Fb",
        "vfs:///tmp/x\x00y?backingImage=parrot",
        "vfs://relative/path?backingImage=parrot",
        "ftp://host/x?backingImage=parrot",
        "vfs:///tmp/x",
    ],
)
def test_invalid_backup_urls_are_refused(tmp_path, url) -> None:
    with pytest.raises(InvalidBackupURL):
        restore_backup(url, tmp_path / "out.raw")
    assert not (tmp_path / "out.raw").exists()


def test_image_size_must_be_a_multiple_of_512(tmp_path, fast_locks) -> None:
    image = tmp_path / "odd.raw"
    image.write_bytes(b"\1" * 1000)
    with pytest.raises(InvalidInput, match="multiple of 512"):
        backup_image(image, f"vfs://{tmp_path / 's'}", "odd", lock_timings=fast_locks)


def test_missing_backup_is_not_found(tmp_path, fast_locks) -> None:
    with pytest.raises(NotFound, match="no backup of backing image 'ghost'"):
        verify_backup(f"vfs://{tmp_path}?backingImage=ghost", lock_timings=fast_locks)


def test_oversized_block_file_is_named_as_corrupt(tmp_path, fast_locks) -> None:
    url, root, _ = _backup(tmp_path, fast_locks)
    _block_path(root, 3 * BLOCK).write_bytes(os.urandom(3 * BLOCK // 2))  # bigger than a block
    result = verify_backup(url, concurrent_limit=2, lock_timings=fast_locks)
    assert [offset for offset, _ in result.bad_blocks] == [3 * BLOCK]
    assert "corrupt" in result.bad_blocks[0][1]


def test_a_folder_is_not_an_image(tmp_path, fast_locks) -> None:
    with pytest.raises(InvalidInput, match="not a regular file"):
        backup_image(tmp_path, f"vfs://{tmp_path / 'store'}", "parrot", lock_timings=fast_locks)


def test_restore_never_replaces_a_device(tmp_path, fast_locks) -> None:
    url, _, _ = _backup(tmp_path, fast_locks)
    with pytest.raises(InvalidInput, match="not a regular file"):
        restore_backup(url, "/dev/null", lock_timings=fast_locks)
    assert Path("/dev/null").is_char_device()
