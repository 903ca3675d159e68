"""The backupstore part of `make demo`: a sparse image backed up, verified and restored.

`run_store_demo(workdir)` works under `workdir` (./demo-work, gitignored), runs each step
through the real command line as demo.py does, and returns the backup URL and the image's
SHA-512 for the BackupBackingImage and restore manifests.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from longhorn_bi.demo_steps import step

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


def run_store_demo(workdir: Path) -> tuple[str, str]:
    """Back up, verify and restore the demo image through the CLI; returns (URL, checksum)."""
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    image = workdir / f"{DEMO_IMAGE_NAME}.raw"
    checksum = make_demo_image(image)
    print(f"\n== A 32 MiB sparse raw image: {image}", flush=True)
    step("Its SHA-512, the value for spec.checksum", "checksum", str(image))
    target = f"vfs://{workdir / 'backupstore'}"
    url = step(
        "Back it up to a local backupstore in Longhorn's layout",
        "store",
        "backup",
        str(image),
        "--target",
        target,
        "--name",
        DEMO_IMAGE_NAME,
    ).strip()
    step("Read and check every block and the image SHA-512", "store", "verify", url)
    step(
        "Restore it, checked against the checksum",
        "store",
        "restore",
        url,
        "--output",
        str(workdir / f"{DEMO_IMAGE_NAME}.restored.raw"),
        "--checksum",
        checksum,
    )
    return url, checksum


if __name__ == "__main__":
    print(run_store_demo(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-work"))[0])
