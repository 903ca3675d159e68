"""A Longhorn backing-image backupstore written straight from Longhorn's code.

Independent of engine/: it uses lz4.frame, gzip and json directly, so that the reader is
tested against Longhorn's format, not against our own writer. The facts, from
longhorn/backing-image-manager v1.6.4 and v1.12.1, vendor/github.com/longhorn/backupstore/
(backupstore commits 8de988de and e5f4ddc4):
- types.go, util.go: 2 MiB blocks at `blocks/<2 hex>/<2 hex>/<name>.blk`;
- util/util.go `GetChecksum`: a block's name is the first 64 hex of its SHA-512;
  `newCompressionWriter`: one lz4 frame (pierrec/lz4 v4: 4 MB blocks, independent, content
  checksum, no size) or gzip at the default level; "none" stores the bytes;
- backupbackingimage/config.go: `backupstore/backing-images/backing-images/<name>/
  backing-image.cfg`; backupbackingimage/backupbackingimage.go `BackupBackingImage`: the cfg
  fields in order, Size and BlockCount as quoted int64 (`json:",string"`), Blocks omitted
  when empty, an empty CompressionMethod read as gzip (older backups).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lz4.frame

MIB = 1024 * 1024
BLOCK = 2 * MIB


def lz4_block(data: bytes) -> bytes:
    # One frame, 4 MB blocks, independent blocks, content checksum, no stored size.
    frame: bytes = lz4.frame.compress(
        data,
        block_size=lz4.frame.BLOCKSIZE_MAX4MB,
        block_linked=False,
        content_checksum=True,
        store_size=False,
    )
    return frame


def gzip_block(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=6, mtime=0)


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "lz4": lz4_block,
    "gzip": gzip_block,
    "none": bytes,
    "": gzip_block,
}


@dataclass
class RefImage:
    name: str
    content: bytes  # the full image, holes included as zeros
    stored_offsets: list[int]  # offsets that get a block (others are holes)
    compression: str = "lz4"
    complete: bool = True


def write_reference_store(root: Path, images: list[RefImage]) -> None:
    base = root / "backupstore" / "backing-images"
    for image in images:
        blocks = []
        for offset in image.stored_offsets:
            data = image.content[offset : offset + BLOCK]
            name = hashlib.sha512(data).hexdigest()[:64]
            path = base / "blocks" / name[0:2] / name[2:4] / f"{name}.blk"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_bytes(ENCODERS[image.compression](data))
            blocks.append({"Offset": offset, "BlockChecksum": name})
        cfg: dict[str, object] = {
            "Name": image.name,
            "Size": str(len(image.content)),
            "BlockCount": str(len(blocks)) if image.complete else "0",
            "Checksum": hashlib.sha512(image.content).hexdigest(),
            "Labels": {"origin": "reference"},
            "CompressionMethod": image.compression,
            "CreatedTime": "2025-01-02T03:04:05Z",
            "CompleteTime": "2025-01-02T03:04:09Z" if image.complete else "",
            "Secret": "",
            "SecretNamespace": "",
            "ProcessingBlocks": {"Blocks": {}} if image.complete else None,
        }
        if image.complete and blocks:
            cfg["Blocks"] = sorted(blocks, key=lambda b: b["Offset"])  # type: ignore[arg-type,return-value]
        folder = base / "backing-images" / image.name
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "backing-image.cfg").write_text(json.dumps(cfg, separators=(",", ":")))


def make_sparse_file(path: Path, size: int, chunks: dict[int, bytes]) -> bytes:
    """A sparse file of `size` bytes with `chunks` written at their offsets; returns its content."""
    content = bytearray(size)
    with open(path, "wb") as handle:
        handle.truncate(size)
        for offset, data in chunks.items():
            handle.seek(offset)
            handle.write(data)
            content[offset : offset + len(data)] = data
    return bytes(content)


def allocated_bytes(path: Path) -> int:
    return os.stat(path).st_blocks * 512
