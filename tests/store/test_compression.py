"""Block codecs: Longhorn's headers, and decoding whatever a valid writer produced."""

from __future__ import annotations

import gzip
import os

import lz4.frame
import pytest

from longhorn_bi.engine.errors import IntegrityError
from longhorn_bi.engine.store.compression import compress, decompress, detect

MIB = 1024 * 1024
TEXT = (b"a line of text-like content in a backing image\n" * 50000)[: 2 * MIB]


@pytest.mark.parametrize("size", [512, 4096, MIB - 1, MIB + 1, 2 * MIB])
@pytest.mark.parametrize("kind", ["random", "text"])
def test_lz4_round_trip_and_header(size, kind) -> None:
    data = os.urandom(size) if kind == "random" else TEXT[:size]
    frame = bytes(compress("lz4", data))
    assert frame[4:6] == b"\x64\x70"  # Longhorn's flags and 4 MB block size, for every size
    assert lz4.frame.decompress(frame) == data  # the reference decoder agrees
    assert bytes(decompress(frame)) == data


@pytest.mark.parametrize(
    "options",
    [
        {"block_size": lz4.frame.BLOCKSIZE_MAX64KB},  # many blocks in one frame
        {"store_size": True},  # content size in the descriptor
        {"block_checksum": True},
        {"block_linked": True},  # not what Longhorn writes, still decoded
        {"compression_level": 9},
    ],
)
def test_lz4_frames_from_other_writers_decode(options) -> None:
    data = os.urandom(300 * 1024) + TEXT[: 700 * 1024]
    assert bytes(decompress(lz4.frame.compress(data, **options))) == data


def test_gzip_has_gos_header_and_any_gzip_decodes() -> None:
    stored = bytes(compress("gzip", TEXT))
    assert stored[:10] == b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    assert gzip.decompress(stored) == TEXT
    assert bytes(decompress(gzip.compress(TEXT, mtime=0))) == TEXT


def test_detect_by_magic() -> None:
    assert detect(compress("lz4", TEXT)) == "lz4"
    assert detect(compress("gzip", TEXT)) == "gzip"
    assert detect(compress("none", TEXT)) == "none"


@pytest.mark.parametrize("method", ["lz4", "gzip"])
def test_truncated_or_oversized_streams_are_integrity_errors(method) -> None:
    stored = bytes(compress(method, TEXT))
    with pytest.raises(IntegrityError, match="cannot be decompressed"):
        decompress(stored[: len(stored) // 2])
    with pytest.raises(IntegrityError, match="cannot be decompressed"):
        decompress(stored, limit=MIB)  # more than the limit


def _frame_compress(data: bytes) -> bytes:
    return lz4.frame.compress(  # type: ignore[no-any-return]
        data,
        compression_level=0,
        block_size=lz4.frame.BLOCKSIZE_MAX4MB,
        block_linked=False,
        content_checksum=True,
        block_checksum=False,
        store_size=False,
    )


def _barely_compressible(size: int) -> bytes:
    data = bytearray(os.urandom(size))
    data[size // 2 : size // 2 + 40] = bytes(40)  # shrinks by a few bytes, or not at all
    return bytes(data)


@pytest.mark.parametrize("size", [MIB + 1, 2 * MIB - 512, 2 * MIB, 4 * MIB])
@pytest.mark.parametrize("kind", ["random", "text", "zeros", "mixed", "barely"])
def test_lz4_blocks_are_the_bytes_liblz4s_frame_encoder_writes(size, kind) -> None:
    """The frame is built from lz4.block and xxhash (faster): byte for byte the frame that
    lz4.frame.compress() writes with Longhorn's parameters, compressible or not."""
    text = (TEXT * 2)[:size]
    data = {
        "random": lambda: os.urandom(size),
        "text": lambda: text,
        "zeros": lambda: bytes(size),
        "mixed": lambda: (os.urandom(size // 3) + bytes(size // 3) + text)[:size],
        "barely": lambda: _barely_compressible(size),
    }[kind]()
    assert bytes(compress("lz4", data)) == _frame_compress(data)
    assert bytes(compress("lz4", memoryview(data))) == _frame_compress(data)
