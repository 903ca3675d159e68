"""Longhorn's backing-image backupstore layout: paths, block names and the cfg document.

Facts from longhorn/backupstore (backupbackingimage/config.go and backupbackingimage.go,
config.go, lock.go) and DESIGN.md §4. Keys are relative to the store root, '/'-separated.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from longhorn_bi.engine.errors import BackupstoreError, InvalidInput
from longhorn_bi.engine.names import name_problem

BLOCK_SIZE = 2 * 1024 * 1024
SECTOR_SIZE = 512
BLOCK_NAME_LENGTH = 64  # Longhorn keeps the first 64 hex characters of the SHA-512

BASE = "backupstore"
IMAGES_DIR = f"{BASE}/backing-images/backing-images"
BLOCKS_DIR = f"{BASE}/backing-images/blocks"
CFG_FILE = "backing-image.cfg"
BLOCK_SUFFIX = ".blk"
LOCK_OWNER = "BACKINGIMAGE"  # every backing image shares this one lock folder
LOCK_SUFFIX = ".lck"

COMPRESSION_METHODS = ("lz4", "gzip", "none")
LEGACY_COMPRESSION = "gzip"  # an empty CompressionMethod means gzip

_HEX64 = re.compile(r"^[0-9a-f]{64}\Z")
_HEX128 = re.compile(r"^[0-9a-f]{128}\Z")


def block_name(data: bytes | bytearray | memoryview) -> str:
    """A block's name: the first 64 hex characters of the SHA-512 of its uncompressed bytes."""
    return hashlib.sha512(data).hexdigest()[:BLOCK_NAME_LENGTH]


def is_block_name(name: str) -> bool:
    return bool(_HEX64.match(name))


def is_image_checksum(value: str) -> bool:
    return bool(_HEX128.match(value))


def check_image_name(name: str) -> str:
    """Refuse a name that could escape its folder ('/', '..', NUL) or that Longhorn refuses."""
    problem = name_problem(name)
    if problem:
        raise InvalidInput(
            f"backing image name {problem}",
            hint="use lower-case letters, digits, '-', '_' or '.', e.g. --name parrot",
        )
    return name


def cfg_key(name: str) -> str:
    return f"{IMAGES_DIR}/{check_image_name(name)}/{CFG_FILE}"


def block_key(name: str) -> str:
    if not is_block_name(name):
        raise BackupstoreError(
            f"invalid block name {name!r}: expected 64 lower-case hex characters"
        )
    return f"{BLOCKS_DIR}/{name[0:2]}/{name[2:4]}/{name}{BLOCK_SUFFIX}"


def lock_dir() -> str:
    # The lock lives in a volume folder named after the SHA-512 of "BACKINGIMAGE": 22/fc.
    digest = block_name(LOCK_OWNER.encode())
    return f"{BASE}/volumes/{digest[0:2]}/{digest[2:4]}/{LOCK_OWNER}/locks"


def lock_key(lock_name: str) -> str:
    return f"{lock_dir()}/{lock_name}{LOCK_SUFFIX}"


def now_rfc3339() -> str:
    """UTC time as Go's time.RFC3339 prints it: second precision, 'Z' suffix."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class BlockRef:
    offset: int
    checksum: str


@dataclass
class BackingImageCfg:
    """backing-image.cfg, field for field. `complete` means CompleteTime is set."""

    name: str
    size: int
    checksum: str = ""
    labels: dict[str, str] | None = None
    compression: str = "lz4"
    created: str = ""
    completed: str = ""
    secret: str = ""
    secret_namespace: str = ""
    block_count: int = 0
    blocks: list[BlockRef] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.completed != ""

    @property
    def compression_method(self) -> str:
        return self.compression or LEGACY_COMPRESSION

    def to_json(self) -> bytes:
        """Compact JSON with Longhorn's field order, as Go's json.Marshal writes it."""
        doc: dict[str, Any] = {
            "Name": self.name,
            "Size": str(self.size),
            "BlockCount": str(self.block_count),
            "Checksum": self.checksum,
            "Labels": dict(sorted(self.labels.items())) if self.labels is not None else None,
            "CompressionMethod": self.compression,
            "CreatedTime": self.created,
            "CompleteTime": self.completed,
            "Secret": self.secret,
            "SecretNamespace": self.secret_namespace,
            # nil while in progress; the loaded-and-resaved empty map once complete
            "ProcessingBlocks": {"Blocks": {}} if self.complete else None,
        }
        if self.blocks:  # `json:",omitempty"` in Longhorn's struct
            doc["Blocks"] = [
                {"Offset": b.offset, "BlockChecksum": b.checksum}
                for b in sorted(self.blocks, key=lambda b: b.offset)
            ]
        return go_json(doc)

    @classmethod
    def from_json(cls, raw: bytes, *, where: str = "backing-image.cfg") -> BackingImageCfg:
        try:
            doc = json.loads(raw)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
            labels = doc.get("Labels")
            blocks = [
                BlockRef(int(b["Offset"]), str(b["BlockChecksum"])) for b in doc.get("Blocks") or []
            ]
            cfg = cls(
                name=str(doc.get("Name", "")),
                size=int(doc.get("Size", 0)),
                checksum=str(doc.get("Checksum", "")),
                labels={str(k): str(v) for k, v in labels.items()}
                if isinstance(labels, dict)
                else None,
                compression=str(doc.get("CompressionMethod", "")),
                created=str(doc.get("CreatedTime", "")),
                completed=str(doc.get("CompleteTime", "")),
                secret=str(doc.get("Secret", "")),
                secret_namespace=str(doc.get("SecretNamespace", "")),
                block_count=int(doc.get("BlockCount", 0)),
                blocks=blocks,
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BackupstoreError(f"{where} is not a valid backing image config: {exc}") from None
        for ref in cfg.blocks:
            if not is_block_name(ref.checksum) or ref.offset < 0 or ref.offset % BLOCK_SIZE:
                raise BackupstoreError(
                    f"{where} has an invalid block entry at offset {ref.offset}: {ref.checksum!r}"
                )
            if ref.offset >= cfg.size:
                raise BackupstoreError(
                    f"{where} has a block at offset {ref.offset} beyond Size {cfg.size}"
                )
        if cfg.compression_method not in COMPRESSION_METHODS:
            raise BackupstoreError(f"{where} has unknown CompressionMethod {cfg.compression!r}")
        return cfg


def go_json(doc: Any) -> bytes:
    """json.dumps as Go's encoding/json.Marshal: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
