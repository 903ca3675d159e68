"""store backup / restore on vfs:// against restic and borg; restore from S3 (moto); peak RSS.

    python -m benchmarks.bench_store [--size-mib 1024] [--skip-s3] [--s3-size-mib 256]
        [--skip-peers] [--settle SECONDS]

Each peer backs up to and restores from a local repository; creating the repository is not
timed. A peer that is not installed is skipped, and the output says so. The image is read
from the page cache by everybody (it is read once before timing).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_data import WORK, make_image
from benchmarks.measure import Run, drop, line
from benchmarks.measure import run as run_now

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")
PEER_ENV = {
    "RESTIC_PASSWORD": "bench",
    "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
    "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
}


SETTLE = {"seconds": 0.0}  # --settle


def run(argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """measure.run, after --settle seconds: on a VM with free page reporting, memory freed
    a moment ago is still backed by the host and much cheaper to fill than memory freed
    seconds ago, so whichever tool runs right after another's cleanup looks faster."""
    if SETTLE["seconds"]:
        time.sleep(SETTLE["seconds"])
    return run_now(argv, env=env, cwd=cwd)


def _warm(path: Path) -> None:
    with open(path, "rb") as handle:
        while handle.read(8 << 20):
            pass


def ours(image: Path, work: Path, concurrency: int) -> tuple[Run, Run]:
    store = work / "ours-store"
    drop(store)
    out = work / "ours-out.img"
    backup = run(
        [
            EXE,
            "store",
            "backup",
            str(image),
            "--target",
            f"vfs://{store}",
            "--name",
            "bench",
            "--concurrency",
            str(concurrency),
        ]
    )
    restore = run(
        [
            EXE,
            "store",
            "restore",
            f"vfs://{store}?backingImage=bench",
            "--output",
            str(out),
            "--concurrent-limit",
            str(concurrency),
        ]
    )
    drop(out)
    drop(store)
    return backup, restore


def borg(image: Path, work: Path) -> tuple[Run, Run]:
    repo, out = work / "borg-repo", work / "borg-out"
    drop(repo)
    drop(out)
    subprocess.run(
        ["borg", "init", "-e", "none", str(repo)],
        check=True,
        env={**os.environ, **PEER_ENV},
        capture_output=True,
    )
    backup = run(["borg", "create", "--compression", "lz4", f"{repo}::a", str(image)], env=PEER_ENV)
    out.mkdir()
    restore = run(["borg", "extract", f"{repo}::a"], env=PEER_ENV, cwd=out)
    drop(out)
    drop(repo)
    return backup, restore


def restic(image: Path, work: Path) -> tuple[Run, Run]:
    repo, out = work / "restic-repo", work / "restic-out"
    drop(repo)
    drop(out)
    subprocess.run(
        ["restic", "init", "--repo", str(repo)],
        check=True,
        env={**os.environ, **PEER_ENV},
        capture_output=True,
    )
    backup = run(["restic", "backup", "--repo", str(repo), "--no-cache", str(image)], env=PEER_ENV)
    restore = run(
        ["restic", "restore", "latest", "--repo", str(repo), "--no-cache", "--target", str(out)],
        env=PEER_ENV,
    )
    drop(out)
    drop(repo)
    return backup, restore


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def s3_restores(image: Path, work: Path) -> list[str]:
    """Back up to a moto server (own process), then restore with 1, 2 and 4 workers."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    lines = []
    try:
        env = {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench-secret",
            "AWS_ENDPOINTS": f"http://127.0.0.1:{port}",
        }
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        import boto3

        boto3.client(
            "s3",
            endpoint_url=env["AWS_ENDPOINTS"],
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench-secret",
        ).create_bucket(Bucket="bench")
        target = "s3://bench@us-east-1/"
        backup = run(
            [
                EXE,
                "store",
                "backup",
                str(image),
                "--target",
                target,
                "--name",
                "bench",
                "--concurrency",
                "4",
            ],
            env=env,
        )
        size = image.stat().st_size
        lines.append(line("ours s3(moto) backup c=4", size, backup))
        out = work / "s3-out.img"
        for limit in (1, 2, 4):
            result = run(
                [
                    EXE,
                    "store",
                    "restore",
                    f"{target}?backingImage=bench",
                    "--output",
                    str(out),
                    "--concurrent-limit",
                    str(limit),
                ],
                env=env,
            )
            lines.append(line(f"ours s3(moto) restore limit={limit}", size, result))
            drop(out)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--s3-size-mib", type=int, default=256)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument(
        "--skip-peers", action="store_true", help="ours only (borg, restic not run)"
    )
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--settle", type=float, default=0.0, help="seconds to wait before each timed command"
    )
    # Flags only when run as its own module (benchmarks.run passes bench names in argv).
    own = Path(sys.argv[0]).stem == "bench_store"
    args = parser.parse_args(sys.argv[1:] if own else [])
    SETTLE["seconds"] = args.settle
    work = WORK / "store"
    work.mkdir(parents=True, exist_ok=True)
    peers: dict[str, Callable[[Path, Path], tuple[Run, Run]]] = (
        {} if args.skip_peers else {"borg": borg, "restic": restic}
    )
    for name in list(peers):
        if shutil.which(name) is None:
            print(f"{name}: not installed, skipped (apt-get install -y restic borgbackup)")
            del peers[name]
    for kind in ("realistic", "random"):
        image = make_image(kind, args.size_mib)
        size = image.stat().st_size
        _warm(image)
        backup, restore = ours(image, work, args.concurrency)
        print(line(f"ours backup {kind}", size, backup), flush=True)
        print(line(f"ours restore {kind}", size, restore), flush=True)
        for name, peer in peers.items():
            _warm(image)
            b, r = peer(image, work)
            print(line(f"{name} backup {kind}", size, b), flush=True)
            print(line(f"{name} restore {kind}", size, r), flush=True)
    if not args.skip_s3:
        for text in s3_restores(make_image("realistic", args.s3_size_mib), work):
            print(text, flush=True)


if __name__ == "__main__":
    main()
