"""Where a backup's and a restore's time goes: CPU per stage, CPU per thread, wall per phase.

    python -m benchmarks.profile_store [--size-mib 1024] [--kind realistic|random]

Runs both in this process on a vfs store under bench-work/. Each stage function is wrapped to
add the calling thread's CPU time (time.thread_time) to its stage; each thread's CPU time is
taken when it ends; phases are stamped with the wall clock. The wrappers cost a few
microseconds per call (a few hundred calls per GiB). docs/store.md has the figures.
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.bench_data import WORK, make_image
from longhorn_bi.engine.store import (
    backup,
    backup_pipeline,
    block_io,
    block_writer,
    restore,
)
from longhorn_bi.engine.store.drivers import vfs

STAGE_CPU: collections.defaultdict[str, float] = collections.defaultdict(float)
THREAD_CPU: collections.defaultdict[str, float] = collections.defaultdict(float)
PHASES: list[tuple[str, float]] = []
HASH_STAGE = "{} (hash thread)"
_MUTEX = threading.Lock()


def _timed(owner: Any, name: str, stage: str) -> None:
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.thread_time()
        try:
            return real(*args, **kwargs)
        finally:
            spent = time.thread_time() - start
            # the hash thread's own reads apart: the rest of its CPU is the image SHA-512
            where = HASH_STAGE if threading.current_thread().name == "image-hash" else stage
            with _MUTEX:
                STAGE_CPU[where.format(stage)] += spent

    setattr(owner, name, wrapper)


def _phase(owner: Any, name: str, label: str) -> None:
    real: Callable[..., Any] = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        PHASES.append((label, time.perf_counter()))
        return result

    setattr(owner, name, wrapper)


def _count_threads() -> None:
    real = threading.Thread.run

    def run(self: threading.Thread) -> None:
        try:
            real(self)
        finally:
            kind = self.name.rstrip("0123456789").rstrip("-_") or self.name
            with _MUTEX:
                THREAD_CPU[kind] += time.thread_time()

    threading.Thread.run = run  # type: ignore[method-assign]


def _instrument() -> None:
    _count_threads()
    for owner, name, stage in [
        (backup_pipeline, "read_exact", "read image"),
        (backup_pipeline, "all_zero", "zero check"),
        (backup_pipeline, "block_name", "block names"),
        (backup_pipeline, "compress", "lz4"),
        (vfs.VfsStore, "write", "store writes"),
        (vfs.VfsStore, "exists", "exists"),
        (vfs.VfsStore, "read_into", "store reads"),
        (block_io, "decompress", "lz4 decode"),
        (block_io, "block_name", "block names checked"),
        (block_writer, "pwrite_data", "output writes"),
        (restore, "hash_zeros", "whole hash: holes"),
    ]:
        _timed(owner, name, stage)
    _phase(backup_pipeline.ImageHash, "_run", "image hash done")
    _phase(backup, "store_blocks", "blocks stored")
    _phase(vfs.VfsStore, "sync", "syncfs done")


def _derived(cpu: float) -> None:
    """The image SHA-512 (the hash thread's CPU less its timed stages) and what no stage
    holds: Python between the calls, locks, thread switches, waits that spin."""
    if "image-hash" not in THREAD_CPU:
        return
    own = sum(v for k, v in STAGE_CPU.items() if k.endswith(HASH_STAGE.format("")))
    STAGE_CPU["image SHA-512 (hash thread)"] = THREAD_CPU["image-hash"] - own
    STAGE_CPU["untimed (Python, locks)"] = cpu - sum(STAGE_CPU.values())


def _report(title: str, seconds: float, cpu: float, gib: float, started: float) -> None:
    print(f"{title}: wall {seconds:.2f} s, CPU {cpu:.2f} s ({cpu / gib:.2f} CPU-s per GiB)")
    _derived(cpu)
    for stage, value in sorted(STAGE_CPU.items(), key=lambda item: -item[1]):
        print(f"  stage  {stage:<30} {value / gib:6.2f} CPU-s/GiB")
    for kind, value in sorted(THREAD_CPU.items(), key=lambda item: -item[1]):
        print(f"  thread {kind:<30} {value / gib:6.2f} CPU-s/GiB")
    for label, at in PHASES:
        print(f"  phase  {label:<30} at {at - started:6.2f} s")
    STAGE_CPU.clear()
    THREAD_CPU.clear()
    PHASES.clear()


def _openssl(image: Path, gib: float) -> None:
    """The single-stream SHA-512 of the same cached image: the floor of the hash thread."""
    started = time.perf_counter()
    child = subprocess.Popen(["openssl", "dgst", "-sha512", str(image)], stdout=subprocess.DEVNULL)
    usage = os.wait4(child.pid, 0)[2]
    cpu = usage.ru_utime + usage.ru_stime
    print(
        f"openssl dgst -sha512: wall {time.perf_counter() - started:.2f} s, "
        f"CPU {cpu:.2f} s ({cpu / gib:.2f} CPU-s per GiB); load {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--kind", choices=["realistic", "random"], default="realistic")
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    image = make_image(args.kind, args.size_mib)
    with open(image, "rb") as handle:  # from the page cache, as in bench_store
        while handle.read(8 << 20):
            pass
    _openssl(image, args.size_mib / 1024)
    store = WORK / "profile-store"
    out = WORK / "profile-out.img"
    shutil.rmtree(store, ignore_errors=True)
    _instrument()
    gib = args.size_mib / 1024
    for title, action in [
        (
            "backup",
            lambda: backup.backup_image(
                image, f"vfs://{store}", "bench", concurrency=args.concurrency
            ),
        ),
        (
            "restore",
            lambda: restore.restore_backup(
                f"vfs://{store}?backingImage=bench", out, concurrent_limit=args.concurrency
            ),
        ),
    ]:
        main_cpu = time.thread_time()
        cpu = time.process_time()
        started = time.perf_counter()
        action()
        seconds = time.perf_counter() - started
        THREAD_CPU["main"] += time.thread_time() - main_cpu
        _report(
            f"{title} {args.kind} {args.size_mib} MiB",
            seconds,
            time.process_time() - cpu,
            gib,
            started,
        )
    shutil.rmtree(store, ignore_errors=True)
    out.unlink()


if __name__ == "__main__":
    main()
