"""store backup / restore through cifs:// (SMB with smbprotocol, no mount) against a local
Samba, beside vfs:// on the same image and the same disk.

    python -m benchmarks.bench_cifs [--size-mib 512] [--concurrency 4] [--settle SECONDS]

Needs Samba (apt-get install -y samba) and root: smbd is the tests' own (tests/store/
cifs_server.py), serving a folder of ./bench-work/. The client's CPU and peak RSS are those
of our process; `smbd_cpu` is what the server spent on the same command.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmarks.bench_data import WORK, make_image
from benchmarks.measure import Run, drop, line
from benchmarks.measure import run as run_now
from tests.store.cifs_server import SambaUnavailable, run_samba

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")


def _cpu_of_tree(pid: int) -> float:
    """User + system seconds of `pid` and of its children it has reaped (smbd's per
    connection processes end when the client hangs up)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _timed(
    argv: list[str], env: dict[str, str], smbd: int | None, settle: float
) -> tuple[Run, float]:
    if settle:
        time.sleep(settle)
    before = _cpu_of_tree(smbd) if smbd else 0.0
    result = run_now(argv, env=env)
    time.sleep(0.3)  # let smbd reap the connection's process
    return result, (_cpu_of_tree(smbd) - before) if smbd else 0.0


def _one(
    label: str,
    target: str,
    env: dict[str, str],
    args: argparse.Namespace,
    image: Path,
    smbd: int | None,
) -> list[str]:
    size = image.stat().st_size
    out = WORK / "cifs-bench-out.img"
    backup, server = _timed(
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
            str(args.concurrency),
        ],
        env,
        smbd,
        args.settle,
    )
    extra = {"smbd_cpu": f"{server:.2f}s"} if smbd else {}
    lines = [line(f"ours {label} backup c={args.concurrency}", size, backup, **extra)]
    separator = "&" if "?" in target else "?"
    for limit in sorted({1, args.concurrency}):
        restore, server = _timed(
            [
                EXE,
                "store",
                "restore",
                f"{target}{separator}backingImage=bench",
                "--output",
                str(out),
                "--concurrent-limit",
                str(limit),
            ],
            env,
            smbd,
            args.settle,
        )
        extra = {"smbd_cpu": f"{server:.2f}s"} if smbd else {}
        lines.append(line(f"ours {label} restore limit={limit}", size, restore, **extra))
        drop(out)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=512)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--settle", type=float, default=0.0)
    own = Path(sys.argv[0]).stem == "bench_cifs"
    args = parser.parse_args(sys.argv[1:] if own else [])
    image = make_image("realistic", args.size_mib)
    base = WORK / "cifs"
    drop(base)
    base.mkdir(parents=True)
    vfs = base / "vfs-store"
    for line_text in _one("vfs", f"vfs://{vfs}", {}, args, image, None):
        print(line_text, flush=True)
    drop(vfs)
    samba = base / "samba"
    samba.mkdir()
    try:
        with run_samba(samba) as server:
            smbd = _smbd_pid(samba)
            for line_text in _one(
                "cifs(samba)", server.url("bench"), server.env, args, image, smbd
            ):
                print(line_text, flush=True)
    except SambaUnavailable as exc:
        print(f"cifs: {exc}, skipped (apt-get install -y samba, as root)")
    drop(base)


def _smbd_pid(base: Path) -> int | None:
    try:
        return int((base / "pid" / "smbd.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


if __name__ == "__main__":
    main()
