"""The balanced plan of `verify --in-cluster` (longest processing time first) and its files."""

from __future__ import annotations

import itertools
import random

import pytest

from longhorn_bi.engine.errors import InvalidInput
from longhorn_bi.engine.scrub.plan import MAX_PLAN_BYTES, parse_plan, plan_data, plan_text
from longhorn_bi.engine.scrub.shards import balanced_plan, shard

GIB = 1024**3


def _loads(plan: list[list[str]], sizes: dict[str, int]) -> list[int]:
    return [sum(max(sizes[n], 1) for n in names) for names in plan]


def _best_makespan(sizes: list[int], shards: int) -> int:
    """The optimum, by trying every assignment (small inputs only)."""
    best = sum(sizes)
    for choice in itertools.product(range(shards), repeat=len(sizes)):
        loads = [0] * shards
        for size, index in zip(sizes, choice, strict=True):
            loads[index] += size
        best = min(best, max(loads))
    return best


def test_eight_equal_backups_over_four_shards_are_two_each() -> None:
    names = [f"bi-{i}" for i in range(8)]
    hashed = [len(shard(names, 4, i)) for i in range(4)]
    planned = [len(p) for p in balanced_plan([(n, GIB) for n in names], 4)]
    assert planned == [2, 2, 2, 2]
    assert max(hashed) > 2  # what the plan is for: the hash split is uneven here


@pytest.mark.parametrize("shards", [1, 2, 3, 5, 16])
def test_the_plan_is_complete_and_disjoint(shards: int) -> None:
    rng = random.Random(shards)
    sized = [(f"image-{i}", rng.randrange(0, 50 * GIB)) for i in range(200)]
    plan = balanced_plan(sized, shards)
    assert len(plan) == shards
    flat = [name for names in plan for name in names]
    assert sorted(flat) == sorted(n for n, _ in sized)
    assert len(flat) == len(set(flat))
    assert all(names == sorted(names) for names in plan)


@pytest.mark.parametrize("case", range(40))
def test_the_largest_load_is_within_the_lpt_bound(case: int) -> None:
    rng = random.Random(case)
    shards = rng.choice([2, 3])
    sizes = [rng.choice([0, 1, 3, 7, 10, 64, 100]) for _ in range(rng.randrange(1, 9))]
    named = {f"b{i}": size for i, size in enumerate(sizes)}
    plan = balanced_plan(named.items(), shards)
    best = _best_makespan([max(s, 1) for s in sizes], shards)
    assert max(_loads(plan, named)) <= (4 / 3 - 1 / (3 * shards)) * best


def test_a_known_lpt_split() -> None:
    # 7 to shard 0, 5 to 1, 4 to 2, 3 to 2 (load 7), 3 ("e" after "d") to 1 (load 8)
    named = {"a": 7, "b": 5, "c": 4, "d": 3, "e": 3}
    assert balanced_plan(named.items(), 3) == [["a"], ["b", "e"], ["c", "d"]]


def test_same_input_same_plan_whatever_the_order() -> None:
    rng = random.Random(7)
    sized = [(f"image-{i}", rng.choice([0, GIB, 2 * GIB])) for i in range(60)]
    plan = balanced_plan(sized, 4)
    assert balanced_plan(list(reversed(sized)), 4) == plan
    assert balanced_plan(sorted(sized, key=lambda s: s[1]), 4) == plan


def test_unknown_sizes_count_as_one_and_still_spread() -> None:
    plan = balanced_plan([(f"new-{i}", 0) for i in range(6)], 3)
    assert [len(p) for p in plan] == [2, 2, 2]
    # one big backup and many of unknown size: the big one is alone
    plan = balanced_plan([("big", 10), *[(f"u{i}", 0) for i in range(4)]], 2)
    assert plan == [["big"], ["u0", "u1", "u2", "u3"]]


def test_more_shards_than_backups_leaves_shards_empty() -> None:
    plan = balanced_plan([("a", 1), ("b", 2)], 4)
    assert plan == [["b"], ["a"], [], []]


def test_bad_shards_are_named() -> None:
    with pytest.raises(InvalidInput, match="--shards 0"):
        balanced_plan([("a", 1)], 0)


def test_plan_files_read_back() -> None:
    plan = balanced_plan([("a", 3), ("b", 2), ("c", 1)], 3)
    data = plan_data([*plan, []])
    assert sorted(data) == ["0", "1", "2", "3"]
    assert [parse_plan(data[str(i)], i, f"/plan/{i}") for i in range(4)] == [*plan, []]
    assert data["3"] == "# longhorn-bi verify plan: shard 3 of 4, 0 backup(s)\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the plan file /plan/1 is empty"),
        ("\n\n", "the plan file /plan/1 is empty"),
        ("a\nb\n", "is not a verify plan: its first line is 'a'"),
        (plan_text(2, 4, ["a"]), "is the plan of shard 2 of 4, not of shard 1"),
        (
            plan_text(1, 4, ["a", "b"]).replace("b\n", ""),
            "names 1 backup.s., its first line says 2",
        ),
        (plan_text(1, 4, ["a", "a"]), "names a backup twice"),
    ],
)
def test_a_plan_file_that_is_not_whole_is_refused(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as caught:
        parse_plan(text, 1, "/plan/1")
    assert caught.value.hint


def test_a_plan_too_large_for_a_configmap_is_refused() -> None:
    names = [f"backup-{i:056d}" for i in range(MAX_PLAN_BYTES // 60)]
    with pytest.raises(InvalidInput, match="more than a ConfigMap holds") as caught:
        plan_data(balanced_plan([(n, 1) for n in names], 4))
    assert "--target" in str(caught.value.hint)
