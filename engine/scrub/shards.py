"""Stable shard assignment and sampling of backups, by a hash of the name alone.

The hash (not the position in a listing) decides, so that every pod of an Indexed Job agrees
on the split without talking to the others, and a retried index verifies the same backups.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

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


def check_fraction(fraction: float) -> None:
    if not 0 < fraction <= 1:
        raise InvalidInput(
            f"--sample {fraction} is not a fraction", hint="give a number in (0, 1], e.g. 0.1"
        )


def sample(names: Iterable[str], fraction: float, seed: str) -> list[str]:
    """About `fraction` of the names, chosen by hash with `seed`: the same seed picks the same
    backups (every shard agrees), a new seed (e.g. the date) picks others over time."""
    check_fraction(fraction)
    if fraction >= 1:
        return sorted(names)
    limit = int(fraction * 2**64)
    return sorted(n for n in names if _point(f"{seed}/{n}") < limit)
