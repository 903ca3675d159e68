"""`validate` throughput on 20,000 generated documents in a few files, as a whole process.

Target: at least 5,000 documents/s on one core (kubeconform publishes about 1,900
resources/s per core). Run: python -m benchmarks.bench_validate
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import PLUGIN, pin_to_one_core, result, wall_times

DOCUMENTS = 20_000
FILES = 4
CHECKSUM = "304f3ed30ca6878e9056ee6f1b02b328239f0d0c2c1272840998212f9734b196371560b3b939037e4f4c2884ce457c2cbc9f0621f4f5d1ca983983c8cdf8cd9a"


def document(number: int) -> str:
    name = f"image-{number}"
    match number % 4:
        case 0:
            return (
                f"apiVersion: longhorn.io/v1beta2\nkind: BackingImage\nmetadata:\n  name: {name}\n  namespace: longhorn-system\n"
                f"spec:\n  sourceType: download\n  sourceParameters:\n    url: https://images.example.com/{name}.raw\n  checksum: {CHECKSUM}\n"
            )
        case 1:
            return (
                f"apiVersion: longhorn.io/v1beta2\nkind: BackupBackingImage\nmetadata:\n  name: image-{number - 1}\n  namespace: longhorn-system\n"
                f"  labels:\n    team: storage\nspec:\n  backingImage: image-{number - 1}\n  backupTargetName: default\n  userCreated: true\n"
                "  labels:\n    usecase: test\n"
            )
        case 2:
            return (
                f"apiVersion: longhorn.io/v1beta2\nkind: BackingImage\nmetadata:\n  name: {name}-restore\n  namespace: longhorn-system\n"
                f"spec:\n  sourceType: restore\n  sourceParameters:\n    backup-url: s3://backupbucket@us-east-1/?backingImage=image-{number - 2}\n"
                f'    concurrent-limit: "2"\n  checksum: {CHECKSUM}\n'
            )
        case _:
            return (
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: value\n"
            )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        per_file = DOCUMENTS // FILES
        target = "apiVersion: longhorn.io/v1beta2\nkind: BackupTarget\nmetadata:\n  name: default\n  namespace: longhorn-system\nspec:\n  backupTargetURL: s3://backupbucket@us-east-1/\n"
        for index in range(FILES):
            docs = [document(n) for n in range(index * per_file, (index + 1) * per_file)]
            if index == 0:
                docs[-1] = target  # one target for the whole set
            Path(tmp, f"manifests-{index}.yaml").write_text("---\n".join(docs))
        size = sum(p.stat().st_size for p in Path(tmp).iterdir())
        command = pin_to_one_core([PLUGIN, "validate", tmp, "-o", "json"])
        times = wall_times(command, 3)
        best = min(times)
        result(
            "validate",
            documents=DOCUMENTS,
            files=FILES,
            bytes=size,
            best_s=round(best, 3),
            docs_per_s=round(DOCUMENTS / best),
            target_docs_per_s=5000,
            kubeconform_published_per_core=1900,
        )


if __name__ == "__main__":
    main()
