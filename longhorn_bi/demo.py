"""`make demo`: the main job end to end, through the real command line.

Each step prints the command it runs and what the command printed, as a user would see it.
"""

from __future__ import annotations

from pathlib import Path

from longhorn_bi.demo_steps import step
from longhorn_bi.demo_store import DEMO_IMAGE_NAME, run_store_demo

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "gitops"


def main() -> None:
    checksum = "304f3ed30ca6878e9056ee6f1b02b328239f0d0c2c1272840998212f9734b196371560b3b939037e4f4c2884ce457c2cbc9f0621f4f5d1ca983983c8cdf8cd9a"
    step(
        "A backup of the backing image 'parrot' (Longhorn 1.6)",
        "backup",
        "parrot",
        "--label",
        "usecase=test",
        "--label",
        "type=raw",
        "--longhorn-version",
        "1.6",
    )
    step(
        "Restore it in another cluster",
        "restore",
        "parrot-restore",
        "--backup-url",
        "s3://backupbucket@us-east-1/?backingImage=parrot",
        "--concurrent-limit",
        "2",
        "--checksum",
        checksum,
        "--longhorn-version",
        "1.6",
    )
    step(
        "A mistake is refused before it reaches a cluster",
        "restore",
        "parrot-restore",
        "--backup-url",
        "s3://backupbucket@us-east-1/",
        "--concurrent-limit",
        "0",
        expect=2,
    )
    examples = EXAMPLES.relative_to(Path.cwd()) if EXAMPLES.is_relative_to(Path.cwd()) else EXAMPLES
    step("Validate a GitOps directory: one good file, one bad", "validate", str(examples), expect=1)
    store_demo(Path.cwd() / "demo-work")


def store_demo(workdir: Path) -> None:
    """A real backup on a local backupstore, then the manifests that point at it."""
    url, checksum = run_store_demo(workdir)
    step("The BackupBackingImage for that image", "backup", DEMO_IMAGE_NAME)
    step(
        "The BackingImage that restores that backup",
        "restore",
        f"{DEMO_IMAGE_NAME}-restored",
        "--backup-url",
        url,
        "--checksum",
        checksum,
    )


if __name__ == "__main__":
    main()
