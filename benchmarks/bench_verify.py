"""verify against restore on the same backup; N backups verified by 1, 2 and 4 workers.

    python -m benchmarks.bench_verify [--stores vfs,moto] [--size-mib 256] [--backups 8]
        [--backup-mib 64] [--s3-size-mib 128] [--s3-backup-mib 32]

Each backup takes Longhorn's lock first (0.2 s on a local file system, 2 s elsewhere: see
store/locks.py), which small backups feel. On a local vfs:// store (the page cache: no
network) the figures say what the verifier itself costs in CPU. On S3 (moto on 127.0.0.1,
and s3rver when installed: benchmarks/s3_servers.py) each worker waits on its requests and
its 2 s lock, which is what more shards (pods) overlap; the local server shares this
machine's cores with the workers, so it is a lower bound of what a real bucket gives. The
workers are processes, as shards are pods: each verifies its shard of the backups, split
both ways in the same run: by a hash of the name (`verify --shards`, the chart's CronJob)
and by the balanced plan of `verify --in-cluster`.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from benchmarks import s3_servers
from benchmarks.bench_data import WORK, make_image
from benchmarks.common import result
from benchmarks.measure import drop
from longhorn_bi.engine.scrub.credentials import store_environment
from longhorn_bi.engine.scrub.shards import balanced_plan, shard
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


@contextlib.contextmanager
def store_target(kind: str, folder: str) -> Iterator[str]:
    """An empty target of `kind` (vfs, or an S3 server's bucket), its credentials in
    os.environ, where the drivers (and spawned workers) read them."""
    if kind == "vfs":
        path = WORK / folder
        drop(path)
        yield f"vfs://{path}"
        drop(path)
        return
    with s3_servers.serve(kind) as server, store_environment(server.env):
        yield f"s3://{s3_servers.BUCKET}@us-east-1/"


def one_worker(kind: str, size_mib: int, concurrency: int) -> None:
    image = make_image("realistic", size_mib)
    with store_target(kind, "verify-store") as target:
        url = backup_image(image, target, "bench", concurrency=concurrency).url
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
        store=kind,
        size_mib=size_mib,
        concurrency=concurrency,
        restore_mib_s=round(size / restored / MIB),
        verify_mib_s=round(size / verified / MIB),
    )


def _shard(args: tuple[list[str], str]) -> int:
    names, target = args
    for name in names:
        assert verify_backup(f"{target}?backingImage={name}", concurrent_limit=2).ok
    return len(names)


def _split(names: list[str], workers: int, how: str, size: int) -> list[list[str]]:
    if how == "hash":
        return [shard(names, workers, i) for i in range(workers)]
    return balanced_plan([(n, size) for n in names], workers)


def _warm(index: int) -> int:
    return index


def many(kind: str, backups: int, backup_mib: int) -> None:
    names = [f"bench-{i}" for i in range(backups)]
    image = make_image("realistic", backup_mib)
    with store_target(kind, "verify-many") as target:
        for i, name in enumerate(names):
            # Different data per backup: a block shared by two backups is stored once.
            copy = WORK / f"verify-many-{i}.img"
            data = bytearray(image.read_bytes())
            data[:16] = i.to_bytes(16, "big")
            copy.write_bytes(bytes(data))
            backup_image(copy, target, name)
            copy.unlink()
        total = backups * backup_mib
        for workers, how in ((1, "hash"), (2, "hash"), (2, "plan"), (4, "hash"), (4, "plan")):
            split = _split(names, workers, how, backup_mib * MIB)
            jobs = [(part, target) for part in split]
            with multiprocessing.get_context("spawn").Pool(workers) as pool:
                pool.map(_warm, range(workers))  # process start and imports are not timed
                start = time.perf_counter()
                pool.map(_shard, jobs)
                seconds = time.perf_counter() - start
            result(
                "verify.workers",
                store=kind,
                workers=workers,
                split=how,
                backups=backups,
                total_mib=total,
                # The largest shard bounds the gain: uneven by hash, even by the plan.
                largest_shard=max(len(part) for part in split),
                seconds=round(seconds, 2),
                mib_s=round(total / seconds),
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--stores", default="vfs,s3", help="vfs, s3 (every local S3 server)")
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--backups", type=int, default=8)
    parser.add_argument("--backup-mib", type=int, default=64)
    parser.add_argument("--s3-size-mib", type=int, default=128)
    parser.add_argument("--s3-backup-mib", type=int, default=32)
    args = parser.parse_args()
    result("verify.load", before=" ".join(f"{x:.2f}" for x in os.getloadavg()))
    for store in args.stores.split(","):
        if store == "vfs":
            one_worker("vfs", args.size_mib, args.concurrency)
            many("vfs", args.backups, args.backup_mib)
        elif store == "s3":
            for server in s3_servers.available():
                one_worker(server, args.s3_size_mib, args.concurrency)
                many(server, args.backups, args.s3_backup_mib)
        else:
            parser.error(f"--stores: unknown store {store!r} (vfs, s3)")
    result("verify.cpus", available=len(os.sched_getaffinity(0)))
    result("verify.load", after=" ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    Path(WORK).mkdir(parents=True, exist_ok=True)
    main()
