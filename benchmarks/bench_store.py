"""store backup / restore on vfs:// against restic, borg and the SHA-512 limit; S3 restores.

    python -m benchmarks.bench_store [--size-mib 1024] [--skip-s3] [--s3-size-mib 256]
        [--skip-peers] [--skip-vfs] [--settle SECONDS]

Each peer backs up to and restores from a local repository; creating the repository is not
timed. A peer that is not installed is skipped, and the output says so. The image is read
from the page cache by everybody (it is read once before timing). `openssl dgst -sha512` of
the same image is the single-stream SHA-512 limit a backup is held to; a `targets` line per
image gives the ratios issue 15 asks for. S3 restores run against moto and, when installed,
s3rver (benchmarks/s3_servers.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import s3_servers
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


def _server_cpu(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc (0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def s3_restores(image: Path, work: Path, servers: list[str]) -> list[str]:
    """Per local S3 server (own process): back up, then restore with 1, 2 and 4 workers; the
    server's own CPU time per restore says whether it, not the restore, is the bottleneck."""
    lines = []
    size = image.stat().st_size
    for name in servers:
        with s3_servers.serve(name) as server:
            target = f"s3://{s3_servers.BUCKET}@us-east-1/"
            argv = [EXE, "store", "backup", str(image), "--target", target]
            backup = run([*argv, "--name", "bench", "--concurrency", "4"], env=server.env)
            lines.append(line(f"ours s3({name}) backup c=4", size, backup))
            out = work / "s3-out.img"
            for limit in (1, 2, 4):
                before = _server_cpu(server.process.pid)
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
                    env=server.env,
                )
                server_cpu = _server_cpu(server.process.pid) - before
                lines.append(
                    line(
                        f"ours s3({name}) restore limit={limit}",
                        size,
                        result,
                        server_cpu=f"{server_cpu:.2f}s",
                    )
                )
                drop(out)
    return lines


def machine() -> str:
    """The CPU model and its hash extensions: the ratio to borg (hardware SHA-256 names)
    depends on sha_ni, and no x86 CPU here has SHA-512 instructions (flag sha512)."""
    model, flags = "unknown", set[str]()
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = text.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    yes = {True: "yes", False: "no"}
    return (
        f"cpu: {model}, {os.cpu_count()} cores, sha_ni={yes['sha_ni' in flags]}, "
        f"sha512={yes['sha512' in flags]}, avx512={yes['avx512f' in flags]}; load "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def summary(kind: str, size: int, runs: dict[str, tuple[Run, Run]], limit: Run | None) -> str:
    """The issue-15 targets for one image: backup and restore >= 1.2x the faster peer,
    backup >= 0.8x the single-stream SHA-512 (openssl) speed, peak RSS < 100 MiB."""
    ours_backup, ours_restore = runs["ours"]
    parts = [f"targets {kind}:"]
    peers = {name: pair for name, pair in runs.items() if name != "ours"}
    if peers:
        best_b = min(peers, key=lambda name: peers[name][0].seconds)
        best_r = min(peers, key=lambda name: peers[name][1].seconds)
        speed_b = peers[best_b][0].seconds / ours_backup.seconds
        speed_r = peers[best_r][1].seconds / ours_restore.seconds
        parts.append(f"backup {speed_b:.2f}x {best_b},")
        parts.append(f"restore {speed_r:.2f}x {best_r} (want >= 1.2x),")
    if limit is not None:
        parts.append(f"backup {limit.seconds / ours_backup.seconds:.2f}x sha512 (want >= 0.8x),")
    rss = max(ours_backup.peak_rss_mib, ours_restore.peak_rss_mib)
    parts.append(f"peak RSS {rss:.0f} MiB (want < 100)")
    return " ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--s3-size-mib", type=int, default=256)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-vfs", action="store_true", help="the S3 restores only")
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
    print(machine(), flush=True)
    openssl = shutil.which("openssl")
    for kind in () if args.skip_vfs else ("realistic", "random"):
        image = make_image(kind, args.size_mib)
        size = image.stat().st_size
        limit = None
        if openssl:  # the single-stream SHA-512 limit, from the page cache
            _warm(image)
            limit = run([openssl, "dgst", "-sha512", str(image)])
            print(line(f"openssl sha512 {kind}", size, limit), flush=True)
        _warm(image)
        runs = {"ours": ours(image, work, args.concurrency)}
        print(line(f"ours backup {kind}", size, runs["ours"][0]), flush=True)
        print(line(f"ours restore {kind}", size, runs["ours"][1]), flush=True)
        for name, peer in peers.items():
            _warm(image)
            runs[name] = peer(image, work)
            print(line(f"{name} backup {kind}", size, runs[name][0]), flush=True)
            print(line(f"{name} restore {kind}", size, runs[name][1]), flush=True)
        print(summary(kind, size, runs, limit), flush=True)
    if not args.skip_s3:
        servers = s3_servers.available()
        if "s3rver" not in servers:
            print("s3rver: not installed, moto only (npm install -g s3rver)")
        image = make_image("realistic", args.s3_size_mib)
        for text in s3_restores(image, work, servers):
            print(text, flush=True)


if __name__ == "__main__":
    main()
