"""store backup / restore through azblob:// (Azurite, on disk) beside vfs://, same image.

    python -m benchmarks.bench_store_azure [--size-mib 256] [--concurrency 4]

Azurite (`make azurite`) runs in its own process with its data on the same disk as the vfs
store; the lines give ours only (wall time, MB/s, CPU and peak RSS of our process). Azurite
is a Node.js emulator, not Azure: the figures say what our driver costs and that it keeps
its memory bound, not what Azure would do.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.bench_data import WORK, make_image
from benchmarks.measure import Run, drop, line, run
from tests.store.azurite_server import azure_env, azurite_binary, create_container, running_azurite

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")


def round_trip(
    image: Path, target: str, out: Path, concurrency: int, env: dict[str, str]
) -> tuple[Run, Run]:
    backup = run(
        [EXE, "store", "backup", str(image), "--target", target, "--name", "bench",
         "--concurrency", str(concurrency)],
        env=env,
    )  # fmt: skip
    restore = run(
        [EXE, "store", "restore", f"{target}?backingImage=bench", "--output", str(out),
         "--concurrent-limit", str(concurrency)],
        env=env,
    )  # fmt: skip
    drop(out)
    return backup, restore


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=4)
    own = Path(sys.argv[0]).stem == "bench_store_azure"
    args = parser.parse_args(sys.argv[1:] if own else [])
    if azurite_binary() is None:
        print("azurite: not installed, skipped (make azurite)")
        return
    work = WORK / "store-azure"
    drop(work)
    work.mkdir(parents=True)
    image = make_image("realistic", args.size_mib)
    size = image.stat().st_size
    out = work / "out.img"
    store = work / "vfs-store"
    backup, restore = round_trip(image, f"vfs://{store}", out, args.concurrency, {})
    print(line(f"ours vfs backup c={args.concurrency}", size, backup), flush=True)
    print(line(f"ours vfs restore limit={args.concurrency}", size, restore), flush=True)
    drop(store)
    with running_azurite(work, on_disk=True) as endpoint:
        target = f"azblob://{create_container(endpoint)}@core.windows.net/"
        backup, restore = round_trip(image, target, out, args.concurrency, azure_env(endpoint))
    print(line(f"ours azblob(azurite) backup c={args.concurrency}", size, backup), flush=True)
    print(line(f"ours azblob(azurite) restore limit={args.concurrency}", size, restore), flush=True)
    drop(work)


if __name__ == "__main__":
    main()
