"""Run a command, and report its wall time and peak RSS (of the process and its children)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Run:
    seconds: float
    peak_rss_mib: float
    cpu_seconds: float  # user + system: steadier than wall time on a shared machine


def run(argv: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    start = time.perf_counter()
    process = subprocess.Popen(
        list(argv),
        env={**os.environ, **(env or {})},
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    stderr = process.stderr.read().decode(errors="replace") if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed ({process.returncode}): {stderr[-2000:]}")
    return Run(seconds, usage.ru_maxrss / 1024, usage.ru_utime + usage.ru_stime)


def line(name: str, size: int, result: Run, **extra: object) -> str:
    rate = size / result.seconds / 1e6
    fields = " ".join(f"{k}={v}" for k, v in extra.items())
    return (
        f"{name:<34} size={size / 2**20:.0f}MiB seconds={result.seconds:.2f} "
        f"MB/s={rate:.0f} cpu={result.cpu_seconds:.2f}s peak_rss={result.peak_rss_mib:.0f}MiB "
        f"{fields}".rstrip()
    )


def drop(path: Path) -> None:
    """Remove a file or a folder tree."""
    if path.is_dir():
        import shutil

        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
