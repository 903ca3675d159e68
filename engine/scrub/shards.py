"""Shard assignment (a hash split and a balanced plan), sampling of backups and of their blocks.

Two ways to split backups over the pods of an Indexed Job:
- `shard`: by a hash of the name, so that every pod agrees on the split without talking to
  the others, and a retried index verifies the same backups. Stable, but uneven for the few
  backups a real target holds (8 over 4 shards came out 0/3/2/3). The chart's CronJob keeps
  it: nothing runs before its pods that could plan the split.
- `balanced_plan`: longest processing time first over the backups' sizes, for
  `verify --in-cluster`, whose plugin lists the backups anyway and hands each index its list
  in a ConfigMap (engine/scrub/plan.py); a retried index reads the same list.
A sample is a pure function of its seed: the same seed reads the same blocks again.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from longhorn_bi.engine.errors import InvalidInput

MAX_SHARDS = 1000


def _point(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def check_shards(shards: int, index: int = 0) -> None:
    if not 1 <= shards <= MAX_SHARDS:
        raise InvalidInput(
            f"--shards {shards} is out of range", hint=f"give 1 to {MAX_SHARDS} shards"
        )
    if not 0 <= index < shards:
        raise InvalidInput(
            f"shard index {index} is not below --shards {shards}",
            hint="JOB_COMPLETION_INDEX (or --shard-index) counts from 0 to shards-1",
        )


def shard_of(name: str, shards: int) -> int:
    """The shard (0..shards-1) that verifies the backup `name`."""
    return _point(name) % shards


def shard(names: Iterable[str], shards: int, index: int) -> list[str]:
    """The names shard `index` of `shards` owns, in sorted order."""
    check_shards(shards, index)
    return sorted(n for n in names if shard_of(n, shards) == index)


def balanced_plan(sized: Iterable[tuple[str, int]], shards: int) -> list[list[str]]:
    """The names split over `shards` by longest processing time first: the largest backup
    goes to the least-loaded shard (ties: by name, then the lowest index), so the same input
    gives the same plan. A size below 1 (unknown) counts as 1, so that such backups still
    spread. Each shard's names are sorted. The largest load is within 4/3 - 1/(3N) of the best
    split (Graham, 1969)."""
    check_shards(shards)
    sizes: dict[str, int] = {}
    for name, size in sized:
        sizes[name] = max(size, 1)
    plan: list[list[str]] = [[] for _ in range(shards)]
    loads = [(0, index) for index in range(shards)]  # a heap: least load, then lowest index
    for name in sorted(sizes, key=lambda n: (-sizes[n], n)):
        load, index = heapq.heappop(loads)
        plan[index].append(name)
        heapq.heappush(loads, (load + sizes[name], index))
    return [sorted(names) for names in plan]


def check_fraction(fraction: float, flag: str = "--sample") -> None:
    if not 0 < fraction <= 1:
        raise InvalidInput(
            f"{flag} {fraction} is not a fraction", hint="give a number in (0, 1], e.g. 0.1"
        )


def sample(names: Iterable[str], fraction: float, seed: str) -> list[str]:
    """About `fraction` of the names, chosen by hash with `seed`: the same seed picks the same
    backups (every shard agrees), a new seed (e.g. the date) picks others over time."""
    check_fraction(fraction, "--sample-backups")
    if fraction >= 1:
        return sorted(names)
    limit = int(fraction * 2**64)
    return sorted(n for n in names if _point(f"{seed}/{n}") < limit)


class _Offset(Protocol):
    @property
    def offset(self) -> int: ...


B = TypeVar("B", bound=_Offset)


@dataclass(frozen=True)
class BlockSample:
    """About `fraction` of a backup's blocks, each drawn by a hash of (seed, backup, offset),
    as `restic check --read-data-subset` draws packs; at least one block of a backup that
    has any, so that a sampled verification never reads nothing."""

    fraction: float
    seed: str

    def __post_init__(self) -> None:
        check_fraction(self.fraction)

    def __call__(self, backup: str, blocks: Sequence[B]) -> list[B]:
        if self.fraction >= 1:
            return list(blocks)
        limit = int(self.fraction * 2**64)
        points = [_point(f"{self.seed}/{backup}/{block.offset}") for block in blocks]
        chosen = [block for block, point in zip(blocks, points, strict=True) if point < limit]
        if not chosen and blocks:
            chosen = [blocks[points.index(min(points))]]
        return chosen
