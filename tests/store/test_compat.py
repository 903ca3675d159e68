"""Compatibility with Longhorn's backing-image backupstore format (the facts and their place
in Longhorn's code are in reference_store.py)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import struct
import zlib
from pathlib import Path

import lz4.frame
import pytest

from longhorn_bi.engine.errors import BackupstoreError
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.drivers.vfs import VfsStore
from longhorn_bi.engine.store.restore import restore_backup
from longhorn_bi.engine.store.verify import verify_backup
from tests.store.reference_store import (
    BLOCK,
    MIB,
    RefImage,
    allocated_bytes,
    make_sparse_file,
    write_reference_store,
)

CFG_FIELDS = [
    "Name",
    "Size",
    "BlockCount",
    "Checksum",
    "Labels",
    "CompressionMethod",
    "CreatedTime",
    "CompleteTime",
    "Secret",
    "SecretNamespace",
    "ProcessingBlocks",
    "Blocks",
]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def _pattern(seed: int, length: int) -> bytes:
    return hashlib.shake_256(seed.to_bytes(4, "big")).digest(length)


@pytest.fixture
def reference(tmp_path: Path) -> tuple[Path, dict[str, RefImage]]:
    shared = _pattern(1, BLOCK)  # one block that two images share
    sparse = bytearray(9 * MIB)  # blocks at 0 and 6 MiB, holes elsewhere, short last block
    sparse[0:BLOCK] = shared
    sparse[6 * MIB : 6 * MIB + 1000] = b"tail of the data" * 62 + b"12345678"
    text = (b"Longhorn backing image text-like content\n" * 60000)[: 5 * MIB]
    images = {
        "sparse-lz4": RefImage("sparse-lz4", bytes(sparse), [0, 6 * MIB], "lz4"),
        "text-gzip": RefImage("text-gzip", shared + text[: 3 * MIB], [0, BLOCK, 2 * BLOCK], "gzip"),
        "raw-none": RefImage("raw-none", _pattern(2, 3 * MIB + 512), [0, BLOCK], "none"),
        "legacy": RefImage("legacy", _pattern(3, BLOCK), [0], ""),
        "unfinished": RefImage("unfinished", _pattern(4, BLOCK), [0], "lz4", complete=False),
    }
    write_reference_store(tmp_path / "store", list(images.values()))
    return tmp_path / "store", images


@pytest.mark.parametrize("name", ["sparse-lz4", "text-gzip", "raw-none", "legacy"])
def test_restores_and_verifies_a_reference_store(reference, tmp_path, fast_locks, name) -> None:
    root, images = reference
    url = f"vfs://{root}?backingImage={name}"
    out = tmp_path / f"{name}.img"
    result = restore_backup(url, out, concurrent_limit=3, lock_timings=fast_locks)
    assert out.read_bytes() == images[name].content
    assert result.checksum == hashlib.sha512(images[name].content).hexdigest()
    verified = verify_backup(url, lock_timings=fast_locks)
    assert verified.ok, verified.bad_blocks


def test_restore_keeps_holes_of_a_sparse_backup(reference, tmp_path, fast_locks) -> None:
    root, _ = reference
    out = tmp_path / "sparse.img"
    restore_backup(f"vfs://{root}?backingImage=sparse-lz4", out, lock_timings=fast_locks)
    assert out.stat().st_size == 9 * MIB
    # Two blocks were written (2 MiB + a short 3 MiB tail block); the 4 MiB hole stays a hole.
    assert allocated_bytes(out) <= 2 * BLOCK + 64 * 1024


def test_shared_block_is_stored_once(reference) -> None:
    root, _ = reference
    blocks = list((root / "backupstore/backing-images/blocks").rglob("*.blk"))
    # sparse-lz4: 2, text-gzip: 3 of which 1 shared, raw-none: 2, legacy: 1, unfinished: 1
    assert len(blocks) == 8


def test_unfinished_reference_backup_is_refused(reference, tmp_path, fast_locks) -> None:
    root, _ = reference
    out = tmp_path / "never.img"
    with pytest.raises(BackupstoreError, match="not complete"):
        restore_backup(f"vfs://{root}?backingImage=unfinished", out, lock_timings=fast_locks)
    assert not out.exists()


class RecordingStore(VfsStore):
    """A vfs store that records the keys written, in order, with their bytes."""

    def __init__(self, url: str, root: Path) -> None:
        super().__init__(url, root)
        self.writes: list[tuple[str, bytes]] = []
        self.events: list[tuple[str, str]] = []

    def write(
        self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        self.writes.append((key, bytes(data)))
        self.events.append(("write-durable" if durable else "write-deferred", key))
        super().write(key, data, durable=durable)

    def sync(self) -> None:
        self.events.append(("sync", ""))
        super().sync()


def _image(tmp_path: Path) -> tuple[Path, bytes]:
    chunks = {
        0: _pattern(10, BLOCK),  # random block
        BLOCK: (b"text-like line of a config file\n" * 70000)[:BLOCK],  # compressible
        3 * BLOCK: bytes(BLOCK),  # written zeros: an all-zero block, not stored
        5 * BLOCK: _pattern(10, BLOCK),  # same content as block 0: dedup
        6 * BLOCK: _pattern(11, 1536),  # short last block
    }
    path = tmp_path / "image.raw"
    return path, make_sparse_file(path, 6 * BLOCK + 1536, chunks)


@pytest.mark.parametrize("compression", ["lz4", "gzip", "none"])
def test_backup_writes_longhorns_layout_field_by_field(tmp_path, fast_locks, compression) -> None:
    image, content = _image(tmp_path)
    root = tmp_path / "store"
    store = RecordingStore(f"vfs://{root}", root)
    result = backup_image(
        image,
        f"vfs://{root}",
        "parrot",
        compression=compression,
        labels={"team": "infra"},
        store=store,
        lock_timings=fast_locks,
    )
    assert result.url == f"vfs://{root}?backingImage=parrot"

    cfg_key = "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    lock_re = re.compile(r"^backupstore/volumes/22/fc/BACKINGIMAGE/locks/lock-[0-9a-f]{16}\.lck$")
    block_re = re.compile(r"^backupstore/backing-images/blocks/(..)/(..)/([0-9a-f]{64})\.blk$")
    data_writes = [(k, v) for k, v in store.writes if not lock_re.match(k)]
    assert data_writes[0][0] == cfg_key and data_writes[-1][0] == cfg_key
    assert all(block_re.match(k) for k, _ in data_writes[1:-1])

    first = json.loads(data_writes[0][1], object_pairs_hook=list)
    assert [k for k, _ in first] == CFG_FIELDS[:-1]  # no Blocks while in progress
    first_doc = dict(first)
    assert first_doc["BlockCount"] == "0" and first_doc["CompleteTime"] == ""
    assert first_doc["ProcessingBlocks"] is None

    raw_final = (root / cfg_key).read_bytes()
    assert raw_final == data_writes[-1][1]
    assert b" " not in raw_final and b"\n" not in raw_final  # compact JSON
    final_pairs = json.loads(raw_final, object_pairs_hook=list)
    assert [k for k, _ in final_pairs] == CFG_FIELDS
    cfg = json.loads(raw_final)
    assert cfg["Name"] == "parrot"
    assert cfg["Size"] == str(len(content))
    assert cfg["Checksum"] == hashlib.sha512(content).hexdigest()
    assert cfg["Labels"] == {"team": "infra"}
    assert cfg["CompressionMethod"] == compression
    assert RFC3339.match(cfg["CreatedTime"]) and RFC3339.match(cfg["CompleteTime"])
    assert cfg["Secret"] == "" and cfg["SecretNamespace"] == ""
    assert cfg["ProcessingBlocks"] == {"Blocks": {}}
    # holes (2, 4 x 2 MiB) and the all-zero block (3) have no entry
    assert [b["Offset"] for b in cfg["Blocks"]] == [0, BLOCK, 5 * BLOCK, 6 * BLOCK]
    assert cfg["BlockCount"] == "4"
    assert cfg["Blocks"][0]["BlockChecksum"] == cfg["Blocks"][2]["BlockChecksum"]

    for entry in cfg["Blocks"]:
        offset, name = entry["Offset"], entry["BlockChecksum"]
        original = content[offset : offset + BLOCK]
        assert name == hashlib.sha512(original).hexdigest()[:64]
        stored = root / f"backupstore/backing-images/blocks/{name[:2]}/{name[2:4]}/{name}.blk"
        raw = stored.read_bytes()
        if compression == "lz4":
            _check_lz4_frame(raw)
            assert lz4.frame.decompress(raw) == original
        elif compression == "gzip":
            # Go's gzip.Writer header: deflate, no flags, mtime 0, XFL 0, OS 255
            assert raw[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
            assert zlib.decompress(raw, 31) == original
        else:
            assert raw == original
    # 3 distinct blocks stored, each written once
    block_writes = [k for k, _ in data_writes if block_re.match(k)]
    assert len(block_writes) == len(set(block_writes)) == 3
    assert result.new_blocks == 3 and result.zero_blocks == 1
    # blocks are flushed by one barrier after the last of them, before the final cfg
    events = [(kind, key) for kind, key in store.events if not key.endswith(".lck")]
    assert events[0] == ("write-durable", cfg_key)
    assert events[-2:] == [("sync", ""), ("write-durable", cfg_key)]
    assert {kind for kind, _ in events[1:-2]} == {"write-deferred"}


def _check_lz4_frame(raw: bytes) -> None:
    assert raw[:4] == b"\x04\x22\x4d\x18"
    assert len(raw) > 15  # header, at least one data block, end mark, checksum
    flg, bd = raw[4], raw[5]
    assert flg >> 6 == 1  # version 01
    assert flg & 0x20  # independent blocks
    assert not flg & 0x10  # no block checksum
    assert not flg & 0x08  # no content size
    assert flg & 0x04  # content checksum
    assert (bd >> 4) & 0x7 == 7  # 4 MB maximum block size
    header_checksum = (lz4_xxh32(raw[4:6]) >> 8) & 0xFF
    assert raw[6] == header_checksum
    assert raw[-8:-4] == b"\x00\x00\x00\x00"  # end mark, then the content checksum


def lz4_xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32, for the frame descriptor's header checksum (inputs under 16 bytes)."""
    p1, p2, p3, p4, p5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
    mask = 0xFFFFFFFF
    acc = (seed + p5 + len(data)) & mask
    i = 0
    while i + 4 <= len(data):
        lane = struct.unpack_from("<I", data, i)[0]
        acc = (acc + lane * p3) & mask
        acc = (((acc << 17) | (acc >> 15)) & mask) * p4 & mask
        i += 4
    for byte in data[i:]:
        acc = (acc + byte * p5) & mask
        acc = (((acc << 11) | (acc >> 21)) & mask) * p1 & mask
    acc ^= acc >> 15
    acc = (acc * p2) & mask
    acc ^= acc >> 13
    acc = (acc * p3) & mask
    acc ^= acc >> 16
    return acc


def test_backup_then_restore_round_trip_keeps_holes(tmp_path, fast_locks) -> None:
    image, content = _image(tmp_path)
    target = f"vfs://{tmp_path / 'store'}"
    result = backup_image(image, target, "parrot", lock_timings=fast_locks)
    out = tmp_path / "out.raw"
    restore_backup(result.url, out, concurrent_limit=2, lock_timings=fast_locks)
    assert out.read_bytes() == content
    assert allocated_bytes(out) <= 5 * BLOCK  # the holes and the zero block stay unallocated


def test_complete_backup_is_already_backed_up(tmp_path, fast_locks) -> None:
    image, _ = _image(tmp_path)
    root = tmp_path / "store"
    backup_image(image, f"vfs://{root}", "parrot", lock_timings=fast_locks)
    store = RecordingStore(f"vfs://{root}", root)
    again = backup_image(image, f"vfs://{root}", "parrot", store=store, lock_timings=fast_locks)
    assert again.already and again.new_blocks == 0
    # The answer is given under the lock (lock.go: lock before reading), and nothing else
    # is written: only the lock file, first waiting, then acquired, then removed.
    assert [json.loads(body)["Acquired"] for _, body in store.writes] == [False, True]
    assert all(key.endswith(".lck") for key, _ in store.writes)
    assert not list((root / "backupstore/volumes").rglob("*.lck"))


def test_dedup_against_blocks_of_another_image(tmp_path, fast_locks) -> None:
    image, _ = _image(tmp_path)
    target = f"vfs://{tmp_path / 'store'}"
    backup_image(image, target, "first", lock_timings=fast_locks)
    second = backup_image(image, target, "second", lock_timings=fast_locks)
    assert second.new_blocks == 0 and second.block_count == 4


def test_lock_file_body_matches_longhorn(tmp_path, fast_locks) -> None:
    image, _ = _image(tmp_path)
    root = tmp_path / "store"
    store = RecordingStore(f"vfs://{root}", root)
    backup_image(image, f"vfs://{root}", "parrot", store=store, lock_timings=fast_locks)
    bodies = [json.loads(v, object_pairs_hook=list) for k, v in store.writes if k.endswith(".lck")]
    assert [k for k, _ in bodies[0]] == ["Name", "Type", "Acquired"]
    assert dict(bodies[0])["Type"] == 1 and dict(bodies[0])["Acquired"] is False
    assert any(dict(b)["Acquired"] is True for b in bodies)
    assert re.fullmatch(r"lock-[0-9a-f]{16}", dict(bodies[0])["Name"])
    assert not list((root / "backupstore/volumes").rglob("*.lck"))  # released
    assert os.listdir(root / "backupstore")  # the store itself remains
