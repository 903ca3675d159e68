"""`make demo`: the main job end to end, through the real command line.

Each step prints the command it runs and what the command printed, as a user would see it.
"""

from __future__ import annotations

from pathlib import Path

from longhorn_bi.demo_steps import step

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples" / "gitops"


PARROT_CHECKSUM = "304f3ed30ca6878e9056ee6f1b02b328239f0d0c2c1272840998212f9734b196371560b3b939037e4f4c2884ce457c2cbc9f0621f4f5d1ca983983c8cdf8cd9a"
# The manifests the demo prints, as (title, command arguments): each must pass the rules of
# the Longhorn version it is printed for (tests/store/test_demo_store.py checks it).
PARROT_MANIFESTS = [
    (
        "A backup of the backing image 'parrot' (Longhorn 1.6)",
        [
            "backup",
            "parrot",
            "--label",
            "usecase=test",
            "--label",
            "type=raw",
            "--longhorn-version",
            "1.6",
        ],
    ),
    (
        "Restore it in another cluster",
        [
            "restore",
            "parrot-restore",
            "--backup-url",
            "s3://backupbucket@us-east-1/?backingImage=parrot",
            "--concurrent-limit",
            "2",
            "--checksum",
            PARROT_CHECKSUM,
            "--longhorn-version",
            "1.6",
        ],
    ),
]


def store_manifests(url: str, checksum: str) -> list[tuple[str, list[str]]]:
    """The backup and restore manifests of the demo's backup at `url`. A vfs:// store is a
    backup target of Longhorn 1.6/1.7 only (1.8 takes s3, nfs, cifs and azblob), so they are
    printed for 1.7."""
    from longhorn_bi.demo_store import DEMO_IMAGE_NAME

    return [
        (
            "The BackupBackingImage for that image (Longhorn 1.7: vfs targets end with 1.7)",
            ["backup", DEMO_IMAGE_NAME, "--longhorn-version", "1.7"],
        ),
        (
            "The BackingImage that restores that backup",
            [
                "restore",
                f"{DEMO_IMAGE_NAME}-restored",
                "--backup-url",
                url,
                "--checksum",
                checksum,
                "--longhorn-version",
                "1.7",
            ],
        ),
    ]


def main() -> None:
    for title, args in PARROT_MANIFESTS:
        step(title, *args)
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
    from longhorn_bi.demo_store import run_store_demo

    url, checksum = run_store_demo(workdir)
    for title, args in store_manifests(url, checksum):
        step(title, *args)


if __name__ == "__main__":
    main()
