"""verify against restore on the same backup; N backups verified by 1, 2 and 4 workers.

    python -m benchmarks.bench_verify [--size-mib 256] [--backups 8] [--backup-mib 64]

Each backup takes Longhorn's lock first (0.2 s on a local file system, 2 s elsewhere: see
store/locks.py), which small backups feel. Everything runs on a local vfs:// store (the page cache: no network), so the figures say
what the verifier itself costs in CPU; on a real store each worker is bounded by its share of
the store's bandwidth instead, which is what more shards (pods) add. The workers are
processes, as shards are pods: each verifies its stable shard of the backups.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.bench_data import WORK, make_image
from benchmarks.common import result
from benchmarks.measure import drop
from longhorn_bi.engine.scrub.shards import shard
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.restore import restore_backup
from longhorn_bi.engine.store.verify import verify_backup

MIB = 1024 * 1024


def _best(fn: Callable[[], None], repeat: int = 2) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def one_worker(size_mib: int, concurrency: int) -> None:
    image = make_image("realistic", size_mib)
    store = WORK / "verify-store"
    drop(store)
    url = backup_image(image, f"vfs://{store}", "bench", concurrency=concurrency).url
    out = WORK / "verify-restore.img"

    def restore() -> None:
        drop(out)
        restore_backup(url, out, concurrent_limit=concurrency)

    def verify() -> None:
        assert verify_backup(url, concurrent_limit=concurrency).ok

    size = size_mib * MIB
    restored, verified = _best(restore), _best(verify)
    drop(out)
    result(
        "verify.one_worker",
        size_mib=size_mib,
        concurrency=concurrency,
        restore_mib_s=round(size / restored / MIB),
        verify_mib_s=round(size / verified / MIB),
    )


def _shard(args: tuple[list[str], str, int, int]) -> int:
    names, target, workers, index = args
    for name in shard(names, workers, index):
        assert verify_backup(f"{target}?backingImage={name}", concurrent_limit=2).ok
    return index


def _warm(index: int) -> int:
    return index


def many(backups: int, backup_mib: int) -> None:
    store = WORK / "verify-many"
    drop(store)
    target = f"vfs://{store}"
    names = [f"bench-{i}" for i in range(backups)]
    image = make_image("realistic", backup_mib)
    for i, name in enumerate(names):
        # Different data per backup: a block shared by two backups is stored once.
        copy = WORK / f"verify-many-{i}.img"
        data = bytearray(image.read_bytes())
        data[:16] = i.to_bytes(16, "big")
        copy.write_bytes(bytes(data))
        backup_image(copy, target, name)
        copy.unlink()
    total = backups * backup_mib
    for workers in (1, 2, 4):
        jobs = [(names, target, workers, index) for index in range(workers)]
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            pool.map(_warm, range(workers))  # process start and imports are not timed
            start = time.perf_counter()
            pool.map(_shard, jobs)
            seconds = time.perf_counter() - start
        result(
            "verify.workers",
            workers=workers,
            backups=backups,
            total_mib=total,
            seconds=round(seconds, 2),
            mib_s=round(total / seconds),
        )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--backups", type=int, default=8)
    parser.add_argument("--backup-mib", type=int, default=64)
    args = parser.parse_args()
    one_worker(args.size_mib, args.concurrency)
    many(args.backups, args.backup_mib)
    result("verify.cpus", available=len(os.sched_getaffinity(0)))


if __name__ == "__main__":
    Path(WORK).mkdir(parents=True, exist_ok=True)
    main()
