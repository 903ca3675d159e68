"""A sampled verification reads only the blocks drawn, checks each, and never the image."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from longhorn_bi.engine.scrub.outcome import FAILED, OK, judge
from longhorn_bi.engine.scrub.shards import BlockSample
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.catalog import require_cfg
from longhorn_bi.engine.store.drivers import open_store
from longhorn_bi.engine.store.layout import BlockRef, block_key
from longhorn_bi.engine.store.verify import verify_backup
from tests.store.reference_store import BLOCK, make_sparse_file

BLOCKS = 8


def _backup(tmp_path: Path, fast_locks) -> tuple[str, Path, list[BlockRef]]:
    chunks = {i * BLOCK: hashlib.shake_256(bytes([i])).digest(BLOCK) for i in range(BLOCKS)}
    image = tmp_path / "image.raw"
    make_sparse_file(image, BLOCKS * BLOCK, chunks)
    root = tmp_path / "store"
    url = backup_image(image, f"vfs://{root}", "parrot", lock_timings=fast_locks).url
    store = open_store(f"vfs://{root}")
    try:
        return url, root, require_cfg(store, "parrot").blocks
    finally:
        store.close()


def _only(offsets: set[int]):
    def pick(name: str, blocks: Sequence[BlockRef]) -> list[BlockRef]:
        assert name == "parrot"
        return [b for b in blocks if b.offset in offsets]

    return pick


def test_unsampled_blocks_are_not_read_and_sampled_ones_are_checked(tmp_path, fast_locks) -> None:
    url, root, refs = _backup(tmp_path, fast_locks)
    (root / block_key(refs[5].checksum)).unlink()  # lost, but not drawn below
    rotten = root / block_key(refs[2].checksum)
    rotten.write_bytes(rotten.read_bytes()[::-1])

    missed = verify_backup(url, lock_timings=fast_locks, pick=_only({0, 7 * BLOCK}))
    assert missed.sampled and missed.checked_blocks == 2 and missed.blocks == BLOCKS
    assert missed.ok and missed.checksum == ""  # no image SHA-512 from a sample
    outcome = judge("parrot", missed, missed.expected_checksum, seed="s1")
    assert outcome.result == OK
    assert outcome.annotation == (
        "ok: sampled 2 of 8 blocks (--seed s1); the image checksum was not checked"
    )

    caught = verify_backup(url, lock_timings=fast_locks, pick=_only({2 * BLOCK, 5 * BLOCK}))
    assert [offset for offset, _ in caught.bad_blocks] == [2 * BLOCK, 5 * BLOCK]
    failed = judge("parrot", caught, caught.expected_checksum, seed="s1")
    assert failed.result == FAILED and failed.bad_offsets == [2 * BLOCK, 5 * BLOCK]
    assert failed.annotation.startswith("failed: sampled 2 of 8 blocks (--seed s1)")

    whole = verify_backup(url, lock_timings=fast_locks, pick=BlockSample(1.0, "any"))
    assert not whole.sampled and whole.checked_blocks == BLOCKS
    assert len(whole.bad_blocks) == 2


def test_a_block_sample_is_reproducible_and_moves_with_the_seed(tmp_path, fast_locks) -> None:
    url, _, refs = _backup(tmp_path, fast_locks)
    half = BlockSample(0.5, "seed-a")
    drawn = half("parrot", refs)
    assert 0 < len(drawn) < BLOCKS and drawn == half("parrot", list(refs))
    assert any(BlockSample(0.5, f"seed-{i}")("parrot", refs) != drawn for i in range(10))
    assert len(BlockSample(1e-9, "x")("parrot", refs)) == 1  # never an empty check
    result = verify_backup(url, lock_timings=fast_locks, pick=half)
    assert result.checked_blocks == len(drawn) and result.ok
