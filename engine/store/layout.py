"""Longhorn's backing-image backupstore layout: paths, block names and the cfg document.

Facts from longhorn/backupstore as longhorn/backing-image-manager v1.6.4 .. v1.12.1 vendor it
(vendor/github.com/longhorn/backupstore/: backupbackingimage/config.go and
backupbackingimage.go, types.go, util.go, lock.go; see docs/store.md). Keys are relative to
the store root, '/'-separated.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from longhorn_bi.engine.errors import BackupstoreError, InvalidInput
from longhorn_bi.engine.names import importable_name_problem, name_problem

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


def check_image_name(name: str, *, importable: bool = False) -> str:
    """Refuse a name that could escape its folder ('/', '..', NUL) or that Longhorn refuses;
    with `importable`, also one Longhorn could not import (names.importable_name_problem):
    what we write must be importable, what others wrote must stay readable."""
    problem = (importable_name_problem if importable else name_problem)(name)
    if problem:
        raise InvalidInput(
            f"backing image name {problem}",
            hint="use lower-case letters, digits, '-' and '.', at most 63, e.g. --name parrot"
            if importable
            else "use lower-case letters, digits, '-', '_' or '.', e.g. --name parrot",
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


@dataclass(frozen=True, slots=True)  # slots: a cfg may list a few hundred thousand
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
        """Parse a cfg read from a store, which is input from outside: every field is
        checked here, before a caller sizes anything by it (see `parse_cfg`)."""
        return parse_cfg(cls, raw, where)


def _fail(where: str, problem: str) -> BackupstoreError:
    return BackupstoreError(
        f"{where} is not a valid backing image config: {problem}",
        hint="the backupstore holds a damaged or foreign backup; delete it or back up again",
    )


# Go writes Size and BlockCount as decimal strings (`json:",string"`) and Offset as a number;
# 19 digits is the most an int64 has.
_DECIMAL = re.compile(r"[0-9]{1,19}\Z")
MAX_INT64 = (1 << 63) - 1


def _int_field(doc: dict[str, Any], key: str, where: str, *, quoted: bool) -> int:
    value = doc.get(key, "0" if quoted else 0)
    if quoted and isinstance(value, str) and _DECIMAL.match(value):
        number = int(value)
    elif type(value) is int:  # not bool, not float
        number = value
    else:
        return _bad_int(where, key, value)
    if not 0 <= number <= MAX_INT64:
        return _bad_int(where, key, value)
    return number


def _bad_int(where: str, key: str, value: object) -> int:
    shown = repr(value)[:40]
    raise _fail(where, f"{key} must be a non-negative whole number, got {shown}")


def _str_field(doc: dict[str, Any], key: str, where: str) -> str:
    value = doc.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(where, f"{key} must be a string, got {type(value).__name__}")
    return value


def _labels(doc: dict[str, Any], where: str) -> dict[str, str] | None:
    labels = doc.get("Labels")
    if labels is None:
        return None
    if not isinstance(labels, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in labels.items()
    ):
        raise _fail(where, "Labels must map strings to strings")
    return labels


def _blocks(doc: dict[str, Any], size: int, where: str) -> list[BlockRef]:
    entries = doc.get("Blocks") or []
    if not isinstance(entries, list):
        raise _fail(where, "Blocks must be a list")
    if len(entries) > size // BLOCK_SIZE + 1:
        raise _fail(where, f"{len(entries)} blocks cannot fit in Size {size}")
    blocks = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise _fail(where, "every Blocks entry must be an object")
        offset = entry.get("Offset", 0)
        checksum = entry.get("BlockChecksum")
        if type(offset) is not int or offset < 0 or offset % BLOCK_SIZE or offset >= size:
            raise _fail(
                where,
                f"block Offset {repr(offset)[:40]} must be a multiple of {BLOCK_SIZE} "
                f"at or above 0 and below Size {size}",
            )
        if not isinstance(checksum, str) or not is_block_name(checksum):
            raise _fail(
                where,
                f"BlockChecksum at offset {offset} must be 64 lower-case hex characters, "
                f"got {repr(checksum)[:80]}",
            )
        blocks.append(BlockRef(offset, checksum))
    blocks.sort(key=lambda ref: ref.offset)
    for before, after in itertools.pairwise(blocks):
        if before.offset == after.offset:
            raise _fail(where, f"two blocks at offset {after.offset}")
    return blocks


def parse_cfg(cls: type[BackingImageCfg], raw: bytes, where: str) -> BackingImageCfg:
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly nested JSON
        raise _fail(where, f"not JSON ({str(exc)[:80]})") from None
    if not isinstance(doc, dict):
        raise _fail(where, "not a JSON object")
    size = _int_field(doc, "Size", where, quoted=True)
    cfg = cls(
        name=_str_field(doc, "Name", where),
        size=size,
        checksum=_str_field(doc, "Checksum", where),
        labels=_labels(doc, where),
        compression=_str_field(doc, "CompressionMethod", where),
        created=_str_field(doc, "CreatedTime", where),
        completed=_str_field(doc, "CompleteTime", where),
        secret=_str_field(doc, "Secret", where),
        secret_namespace=_str_field(doc, "SecretNamespace", where),
        block_count=_int_field(doc, "BlockCount", where, quoted=True),
        blocks=_blocks(doc, size, where),
    )
    if cfg.compression_method not in COMPRESSION_METHODS:
        raise _fail(where, f"unknown CompressionMethod {cfg.compression[:40]!r}")
    if cfg.checksum and not is_image_checksum(cfg.checksum):
        raise _fail(where, "Checksum must be 128 lower-case hex characters (a SHA-512)")
    if cfg.complete and size == 0:
        raise _fail(where, "Size is 0")
    return cfg


def go_json(doc: Any) -> bytes:
    """json.dumps as Go's encoding/json.Marshal: compact, UTF-8, HTML characters escaped."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029").encode()
