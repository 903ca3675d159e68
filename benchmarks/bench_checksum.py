"""`kubectl longhorn-bi checksum` against `openssl dgst -sha512` and coreutils sha512sum.

python -m benchmarks.bench_checksum [--size-mib 1024]
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from benchmarks.bench_data import make_image
from benchmarks.measure import line, run

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs for each tool")
    # Flags only when run as its own module (benchmarks.run passes bench names in argv).
    own = Path(sys.argv[0]).stem == "bench_checksum"
    args = parser.parse_args(sys.argv[1:] if own else [])
    image = make_image("random", args.size_mib)
    size = image.stat().st_size
    run(["cat", str(image)])  # into the page cache for every tool alike
    tools = {
        "ours checksum": [EXE, "checksum", str(image)],
        "openssl dgst -sha512": ["openssl", "dgst", "-sha512", str(image)],
        "sha512sum": ["sha512sum", str(image)],
    }
    for name, argv in tools.items():
        if shutil.which(argv[0]) is None:
            print(f"{name}: not installed, skipped")
            continue
        best = min((run(argv) for _ in range(args.repeat)), key=lambda r: r.seconds)
        print(line(name, size, best, runs=f"best-of-{args.repeat}"), flush=True)


if __name__ == "__main__":
    main()
