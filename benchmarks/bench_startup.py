"""`kubectl-longhorn_bi --help` wall time against `python -c pass` in the same run.

Target: at most 150 ms. Run: python -m benchmarks.bench_startup
"""

from __future__ import annotations

import sys

from benchmarks.common import PLUGIN, median_ms, result, wall_times

RUNS = 30


def main() -> None:
    baseline = wall_times([sys.executable, "-c", "pass"], RUNS)
    plugin_help = wall_times([PLUGIN, "--help"], RUNS)
    validate_help = wall_times([PLUGIN, "validate", "--help"], RUNS)
    result("startup python -c pass", runs=RUNS, median_ms=median_ms(baseline))
    result(
        "startup kubectl-longhorn_bi --help",
        runs=RUNS,
        median_ms=median_ms(plugin_help),
        target_ms=150,
    )
    result(
        "startup kubectl-longhorn_bi validate --help",
        runs=RUNS,
        median_ms=median_ms(validate_help),
        target_ms=150,
    )


if __name__ == "__main__":
    main()
