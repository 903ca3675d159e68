"""Block compression exactly as Longhorn's backupstore writes it, and detection by magic bytes.

Checked against longhorn/backupstore util/util.go (newCompressionWriter) and the vendored
pierrec/lz4 v4 writer defaults: one LZ4 frame, version 1, independent blocks, 4 MB maximum
block size, content checksum on, no block checksum, no content size, fast level; gzip from
Go's compress/gzip at its default level (6), zero mtime, no name, XFL 0 and OS 255.
The frame and gzip headers are therefore byte-identical to Longhorn's; the compressed payload
is valid for any decoder but may differ bytewise from Go's (different compressors).
"""

from __future__ import annotations

import struct
import zlib

import lz4.frame

from longhorn_bi.engine.errors import IntegrityError, InvalidInput

LZ4_MAGIC = b"\x04\x22\x4d\x18"
GZIP_MAGIC = b"\x1f\x8b"
# Go's gzip.Writer header: magic, deflate, no flags, mtime 0, XFL 0, OS 255 (unknown)
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
GZIP_LEVEL = 6

Buffer = bytes | bytearray | memoryview


def compress(method: str, data: Buffer) -> bytes | Buffer:
    """Compress one block with `method` ('lz4', 'gzip' or 'none')."""
    if method == "lz4":
        # The streaming API: lz4.frame.compress() shrinks the descriptor's block size for
        # short inputs (64 KB for a short last block); Go's writer always says 4 MB.
        encoder = lz4.frame.LZ4FrameCompressor(
            block_size=lz4.frame.BLOCKSIZE_MAX4MB,
            block_linked=False,
            compression_level=0,
            content_checksum=True,
            block_checksum=False,
            auto_flush=True,
        )
        return encoder.begin() + encoder.compress(data) + encoder.flush()  # type: ignore[no-any-return]
    if method == "gzip":
        deflater = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        body = deflater.compress(data) + deflater.flush()
        trailer = struct.pack("<II", zlib.crc32(data) & 0xFFFFFFFF, len(data) & 0xFFFFFFFF)
        return _GZIP_HEADER + body + trailer
    if method == "none":
        return data
    raise InvalidInput(
        f"unknown compression {method!r}", hint="use --compression lz4, gzip or none"
    )


def detect(data: Buffer) -> str:
    """The compression of a stored block by its magic bytes; anything else is a raw block."""
    head = bytes(data[:4])
    if head == LZ4_MAGIC:
        return "lz4"
    if head[:2] == GZIP_MAGIC:
        return "gzip"
    return "none"


def decompress(data: Buffer, *, what: str = "block") -> bytes | Buffer:
    """Decode a stored block whatever it was written with (the cfg's method is only a hint).

    A raw block could in theory start with a magic; the caller verifies the name, and on a
    mismatch tries the bytes as raw (see `decode_block`).
    """
    method = detect(data)
    try:
        if method == "lz4":
            return lz4.frame.decompress(data)  # type: ignore[no-any-return]
        if method == "gzip":
            return zlib.decompress(data, zlib.MAX_WBITS | 16)
    except (RuntimeError, zlib.error, ValueError) as exc:
        raise IntegrityError(f"{what} cannot be decompressed as {method}: {exc}") from None
    return data
