"""A backupstore is input from outside: damaged or crafted cfgs, blocks and files are refused
with a clear error, never a traceback, a hang or unbounded memory."""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import lz4.frame
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from longhorn_bi.engine.errors import BackupstoreError, IntegrityError, InvalidInput
from longhorn_bi.engine.store.compression import decompress
from longhorn_bi.engine.store.layout import BLOCK_SIZE, BackingImageCfg, is_block_name
from longhorn_bi.engine.store.restore import restore_backup
from longhorn_bi.engine.store.verify import verify_backup
from tests.store.reference_store import BLOCK, RefImage, write_reference_store

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")
NAME = "a" * 64

# -- cfg documents -------------------------------------------------------------------------

_scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=True),
    st.text(max_size=30),
    st.sampled_from(["0", "512", "4194304", "-1", "1e3", " 12", "9" * 25, "0x10", NAME]),
)
_value = st.recursive(
    _scalar,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_offset = st.one_of(
    st.integers(min_value=-4, max_value=8).map(lambda n: n * BLOCK_SIZE),
    st.integers(min_value=-(1 << 64), max_value=1 << 64),
    _scalar,
)
_entry = st.fixed_dictionaries(
    {},
    optional={
        "Offset": _offset,
        "BlockChecksum": st.one_of(st.sampled_from([NAME, "../" * 20 + "etc", "A" * 64]), _scalar),
    },
)
_cfg = st.fixed_dictionaries(
    {},
    optional={
        "Name": _value,
        "Size": st.one_of(st.sampled_from(["8388608", "18446744073709551615", "-5"]), _value),
        "BlockCount": _value,
        "Checksum": st.one_of(st.just("ab" * 64), _value),
        "Labels": _value,
        "CompressionMethod": st.one_of(st.sampled_from(["lz4", "gzip", "none", "zstd"]), _value),
        "CompleteTime": st.one_of(st.just("2025-01-02T03:04:09Z"), _value),
        "Secret": _value,
        "Blocks": st.one_of(st.lists(_entry, max_size=6), _value),
    },
)


def _check_invariants(cfg: BackingImageCfg) -> None:
    offsets = [ref.offset for ref in cfg.blocks]
    assert offsets == sorted(set(offsets))
    assert all(0 <= o < cfg.size and o % BLOCK_SIZE == 0 for o in offsets)
    assert all(is_block_name(ref.checksum) for ref in cfg.blocks)
    assert isinstance(cfg.size, int) and 0 <= cfg.size < 1 << 63
    assert cfg.compression_method in ("lz4", "gzip", "none")


@settings(max_examples=400, deadline=None)
@given(_cfg)
def test_any_cfg_document_is_accepted_checked_or_refused_cleanly(doc: dict[str, Any]) -> None:
    raw = json.dumps(doc, allow_nan=True).encode()
    try:
        cfg = BackingImageCfg.from_json(raw)
    except BackupstoreError as exc:
        assert "not a valid backing image config" in exc.message
        return
    _check_invariants(cfg)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_cfg_bytes_are_refused_cleanly(raw: bytes) -> None:
    with contextlib.suppress(BackupstoreError):
        _check_invariants(BackingImageCfg.from_json(raw))


def test_cfg_fields_are_named_in_the_refusal() -> None:
    cases = {
        b'{"Size":"12.5"}': "Size must be a non-negative whole number",
        b'{"Size":"-1"}': "Size must be",
        b'{"Size":"99999999999999999999"}': "Size must be",
        b'{"Size":"4194304","Blocks":[{"Offset":4194304,"BlockChecksum":"' + b"a" * 64 + b'"}]}': (
            "below Size 4194304"
        ),
        b'{"Size":"4194304","Blocks":[{"Offset":512,"BlockChecksum":"' + b"a" * 64 + b'"}]}': (
            "must be a multiple of 2097152"
        ),
        b'{"Size":"4194304","Blocks":[{"Offset":0,"BlockChecksum":"../../x"}]}': (
            "BlockChecksum at offset 0 must be 64 lower-case hex characters"
        ),
        b'{"Size":"4194304","Blocks":[{"Offset":0,"BlockChecksum":"'
        + b"a" * 64
        + b'"},{"Offset":0,"BlockChecksum":"'
        + b"b" * 64
        + b'"}]}': "two blocks at offset 0",
        b"[" * 100_000 + b"]" * 100_000: "not JSON",
    }
    for raw, message in cases.items():
        with pytest.raises(BackupstoreError, match=message):
            BackingImageCfg.from_json(raw)


# -- block bytes ------------------------------------------------------------------------------

_VALID = [
    lz4.frame.compress(b"x" * 1000, block_linked=False, content_checksum=True),
    lz4.frame.compress(b"y" * 5000, block_linked=True, block_checksum=True),
    gzip.compress(b"z" * 3000, mtime=0),
]


@st.composite
def _block_bytes(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["random", "lz4", "gzip", "mutated"]))
    tail = draw(st.binary(max_size=300))
    if kind == "lz4":
        return b"\x04\x22\x4d\x18" + tail
    if kind == "gzip":
        return b"\x1f\x8b" + tail
    if kind == "mutated":
        data = bytearray(draw(st.sampled_from(_VALID)))
        for _ in range(draw(st.integers(1, 4))):
            data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
        return bytes(data[: draw(st.integers(1, len(data)))])
    return tail


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_block_bytes())
def test_any_block_bytes_decode_within_the_limit_or_fail_as_corrupt(raw: bytes) -> None:
    try:
        out = decompress(raw, limit=BLOCK_SIZE)
    except IntegrityError:
        return
    assert len(out) <= max(BLOCK_SIZE, len(raw))


BOMBS = {
    "lz4": lz4.frame.compress(bytes(512 << 20), block_linked=False, store_size=False),
    "lz4-linked": lz4.frame.compress(bytes(512 << 20), block_linked=True, block_checksum=True),
    "gzip": gzip.compress(bytes(512 << 20), compresslevel=9, mtime=0),
}


@pytest.mark.parametrize("kind", sorted(BOMBS))
def test_a_decompression_bomb_fails_before_it_is_expanded(kind: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError, match=r"more than 2097152 bytes|cannot be decompressed"):
            decompress(BOMBS[kind], limit=BLOCK_SIZE)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # a few blocks' worth, not 512 MiB


# -- whole stores ------------------------------------------------------------------------------


def _store_with(tmp_path: Path, cfg_patch: dict[str, Any] | None = None) -> tuple[Path, str]:
    root = tmp_path / "store"
    image = RefImage("parrot", os.urandom(BLOCK) + bytes(BLOCK), [0])
    write_reference_store(root, [image])
    cfg_path = root / "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    if cfg_patch:
        doc = json.loads(cfg_path.read_text())
        doc.update(cfg_patch)
        cfg_path.write_text(json.dumps(doc))
    return root, f"vfs://{root}?backingImage=parrot"


def _block_path(root: Path) -> Path:
    return next((root / "backupstore/backing-images/blocks").rglob("*.blk"))


def test_absurd_size_is_refused_before_the_output_exists(tmp_path, fast_locks) -> None:
    _, url = _store_with(tmp_path, {"Size": str((1 << 63) - 1)})
    out = tmp_path / "out" / "image.raw"
    out.parent.mkdir()
    with pytest.raises(BackupstoreError, match="file system of"):
        restore_backup(url, out, lock_timings=fast_locks)
    assert os.listdir(out.parent) == []
    with pytest.raises(InvalidInput, match=r"over the limit of 1099511627776 bytes.*--max-size"):
        verify_backup(url, lock_timings=fast_locks)


def test_a_huge_file_in_place_of_a_block_is_never_read_whole(tmp_path, fast_locks) -> None:
    root, url = _store_with(tmp_path)
    with open(_block_path(root), "r+b") as handle:
        handle.truncate(4 << 30)  # sparse: 4 GiB that a naive reader would load
    result = verify_backup(url, lock_timings=fast_locks)
    assert not result.ok and "larger than any block" in result.bad_blocks[0][1]
    with pytest.raises(IntegrityError, match="larger than any block"):
        restore_backup(url, tmp_path / "out.raw", lock_timings=fast_locks)


def test_a_fifo_or_folder_in_place_of_a_block_or_cfg_does_not_hang(tmp_path, fast_locks) -> None:
    root, url = _store_with(tmp_path)
    block = _block_path(root)
    block.unlink()
    os.mkfifo(block)
    result = verify_backup(url, lock_timings=fast_locks)
    assert not result.ok and "not a regular file" in result.bad_blocks[0][1]
    cfg = root / "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    cfg.unlink()
    cfg.mkdir()
    with pytest.raises(BackupstoreError, match="not a regular file"):
        verify_backup(url, lock_timings=fast_locks)


def test_an_oversized_cfg_is_refused_unread(tmp_path, fast_locks) -> None:
    root, url = _store_with(tmp_path)
    cfg = root / "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    with open(cfg, "r+b") as handle:
        handle.truncate(1 << 30)
    with pytest.raises(BackupstoreError, match="larger than 16 MiB"):
        verify_backup(url, lock_timings=fast_locks)


HOSTILE_CFGS: dict[str, bytes] = {
    "size-not-a-number": b'{"Size":"lots","CompleteTime":"x"}',
    "size-absurd": b'{"Size":"9223372036854775807","CompleteTime":"x","Blocks":[]}',
    "checksum-is-a-path": b'{"Size":"2097152","CompleteTime":"x","Blocks":'
    b'[{"Offset":0,"BlockChecksum":"../../../../etc/passwd"}]}',
    "nested": b"[" * 50_000,
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("case", sorted(HOSTILE_CFGS))
def test_commands_answer_hostile_cfgs_without_a_traceback(tmp_path, case: str) -> None:
    root, url = _store_with(tmp_path)
    cfg = root / "backupstore/backing-images/backing-images/parrot/backing-image.cfg"
    cfg.write_bytes(HOSTILE_CFGS[case])
    out = tmp_path / "out.raw"
    for argv in (
        ["store", "verify", url],
        ["store", "restore", url, "--output", str(out)],
        ["store", "inspect", url],
        ["store", "ls", f"vfs://{root}"],
    ):
        done = subprocess.run([EXE, *argv], capture_output=True, text=True, timeout=60, check=False)
        assert "Traceback" not in done.stderr, done.stderr
        if argv[1] != "ls":
            assert done.returncode in (1, 2) and done.stderr.startswith("error: "), done.stderr
    assert not out.exists()


def test_an_oversized_object_in_place_of_a_block_on_s3(
    tmp_path, s3_bucket, moto_endpoint, fast_locks
) -> None:
    import boto3

    from longhorn_bi.engine.store.backup import backup_image
    from tests.store.reference_store import make_sparse_file

    image = tmp_path / "image.raw"
    make_sparse_file(image, BLOCK, {0: os.urandom(BLOCK)})
    target = f"s3://{s3_bucket}@us-east-1/"
    url = backup_image(image, target, "parrot", lock_timings=fast_locks).url
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    key = next(
        o["Key"]
        for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]
        if o["Key"].endswith(".blk")
    )
    client.put_object(Bucket=s3_bucket, Key=key, Body=bytes(3 << 20))
    result = verify_backup(url, lock_timings=fast_locks)
    assert not result.ok and "larger than any block" in result.bad_blocks[0][1]
