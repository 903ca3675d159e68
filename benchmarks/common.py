"""Helpers the benchmarks share: timing whole processes and printing one result line."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BIN = Path(sys.executable).parent
PLUGIN = str(BIN / "kubectl-longhorn_bi")


def pin_to_one_core(command: Sequence[str]) -> list[str]:
    """Run on CPU 0 only, so that figures are per core (taskset when the machine has it)."""
    return ["taskset", "-c", "0", *command] if shutil.which("taskset") else list(command)


def wall_times(
    command: Sequence[str], runs: int, *, stdout: int | None = subprocess.DEVNULL
) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(
            command, stdout=stdout, stderr=subprocess.DEVNULL, check=False, env=os.environ
        )
        times.append(time.perf_counter() - start)
    return times


def result(name: str, **figures: object) -> None:
    """One line per measurement: `name key=value ...`."""
    print(name, " ".join(f"{key}={value}" for key, value in figures.items()), flush=True)


def median_ms(times: list[float]) -> float:
    return round(statistics.median(times) * 1000, 1)
