"""The backupstore part of `make demo`: a sparse image backed up, verified and restored.

`run_store_demo(workdir)` works under `workdir` (e.g. ./demo-work, gitignored), prints one
line per step and returns the backup URL, for the BackupBackingImage and restore manifests.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from longhorn_bi.engine.backup import backup_image
from longhorn_bi.engine.restore import restore_backup, verify_backup

MIB = 1024 * 1024
DEMO_IMAGE_NAME = "demo-image"


def make_demo_image(path: Path) -> str:
    """A 32 MiB sparse raw image with a few MiB of data; returns its SHA-512."""
    content = bytearray(32 * MIB)
    with open(path, "wb") as handle:
        handle.truncate(len(content))
        for index, offset in enumerate((0, 5 * MIB, 20 * MIB)):
            data = hashlib.shake_256(f"demo block {index}".encode()).digest(MIB)
            handle.seek(offset)
            handle.write(data)
            content[offset : offset + MIB] = data
        text = b"longhorn-bi demo: a text-like region of a backing image\n" * 18000
        handle.seek(26 * MIB)
        handle.write(text)
        content[26 * MIB : 26 * MIB + len(text)] = text
    return hashlib.sha512(content).hexdigest()


def run_store_demo(workdir: Path) -> str:
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / f"{DEMO_IMAGE_NAME}.raw"
    checksum = make_demo_image(image)
    target = f"vfs://{workdir / 'backupstore'}"
    print(f"[store] image {image} (32 MiB, sparse), sha512 {checksum[:16]}...")
    result = backup_image(image, target, DEMO_IMAGE_NAME)
    if result.already:
        print(f"[store] backup exists already: {result.url}")
    else:
        print(
            f"[store] backed up to {result.url}: {result.block_count} blocks "
            f"({result.new_blocks} new, {result.hole_bytes // MIB} MiB of holes skipped)"
        )
    verified = verify_backup(result.url)
    if not verified.ok:
        raise SystemExit(f"[store] verify failed: {verified.bad_blocks}")
    print(f"[store] verified {verified.blocks} blocks and the image SHA-512")
    restored = workdir / f"{DEMO_IMAGE_NAME}.restored.raw"
    restore_backup(result.url, restored, checksum=checksum)
    print(f"[store] restored to {restored}, sha512 matches")
    return result.url


if __name__ == "__main__":
    print(run_store_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-work")))
