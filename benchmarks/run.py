"""Run every benchmark module (bench_*.py) in turn: python -m benchmarks.run [name ...]."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path


def main() -> None:
    wanted = set(sys.argv[1:])
    for path in sorted(Path(__file__).parent.glob("bench_*.py")):
        if wanted and path.stem.removeprefix("bench_") not in wanted and path.stem not in wanted:
            continue
        print(f"# {path.stem}", flush=True)
        importlib.import_module(f"benchmarks.{path.stem}").main()


if __name__ == "__main__":
    main()
