"""Scrub's pure parts: shard assignment, sampling, Longhorn's credential mapping, metrics."""

from __future__ import annotations

import os

import pytest

from longhorn_bi.engine.errors import InvalidInput
from longhorn_bi.engine.scrub.credentials import credential_env, store_environment
from longhorn_bi.engine.scrub.outcome import (
    FAILED,
    OK,
    SKIPPED,
    VERIFIED_AT,
    VERIFY_RESULT,
    Outcome,
    judge,
    metrics_text,
    recorded,
)
from longhorn_bi.engine.scrub.shards import BlockSample, sample, shard, shard_of
from longhorn_bi.engine.store.verify import VerifyResult

NAMES = [f"image-{i}" for i in range(500)]


@pytest.mark.parametrize("shards", [1, 2, 3, 7, 16])
def test_shards_cover_every_backup_exactly_once(shards: int) -> None:
    parts = [shard(NAMES, shards, i) for i in range(shards)]
    flat = [name for part in parts for name in part]
    assert sorted(flat) == sorted(NAMES)
    assert len(flat) == len(set(flat))


def test_shard_assignment_is_stable_whatever_the_listing() -> None:
    forward = shard(NAMES, 4, 2)
    assert shard(list(reversed(NAMES)), 4, 2) == forward
    assert shard([*NAMES, "new-one"], 4, 2) == sorted(
        forward + (["new-one"] if shard_of("new-one", 4) == 2 else [])
    )
    sizes = [len(shard(NAMES, 4, i)) for i in range(4)]
    assert min(sizes) > 80  # a hash spreads 500 names; none of the 4 shards is starved


def test_bad_shards_and_fractions_are_named() -> None:
    with pytest.raises(InvalidInput, match="shard index 3"):
        shard(NAMES, 3, 3)
    with pytest.raises(InvalidInput, match="--shards 0"):
        shard(NAMES, 0, 0)
    with pytest.raises(InvalidInput, match=r"--sample-backups 1\.5"):
        sample(NAMES, 1.5, "seed")
    with pytest.raises(InvalidInput, match=r"--sample 0"):
        BlockSample(0, "seed")


def test_sample_is_a_stable_fraction_that_moves_with_the_seed() -> None:
    picked = sample(NAMES, 0.2, "2026-11-27")
    assert 60 < len(picked) < 140
    assert sample(reversed(NAMES), 0.2, "2026-11-27") == picked
    assert sample(NAMES, 0.2, "2026-11-28") != picked
    assert sample(NAMES, 1.0, "x") == sorted(NAMES)


def test_credentials_map_as_longhorn_does() -> None:
    secret = {
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "key",
        "AWS_ENDPOINTS": "http://minio:9000",
        "AZBLOB_ACCOUNT_KEY": "az",
        "CIFS_PASSWORD": "pw",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    assert credential_env("s3", secret, "s") == {
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "key",
        "AWS_ENDPOINTS": "http://minio:9000",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    assert credential_env("azblob", secret, "s") == {
        "AZBLOB_ACCOUNT_KEY": "az",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    assert credential_env("cifs", secret, "s") == {"CIFS_PASSWORD": "pw"}
    assert credential_env("nfs", secret, "s") == {}
    with pytest.raises(InvalidInput, match="'half' of an s3 target lacks AWS_SECRET_ACCESS_KEY"):
        credential_env("s3", {"AWS_ACCESS_KEY_ID": "id"}, "half")
    # an IAM role stands in for the key pair, which is then not passed at all
    assert credential_env("s3", {"AWS_IAM_ROLE_ARN": "arn", "AWS_ACCESS_KEY_ID": "id"}, "r") == {}


def test_store_environment_sets_and_restores(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "mine")
    monkeypatch.delenv("AWS_ENDPOINTS", raising=False)
    with store_environment({"AWS_ENDPOINTS": "http://x"}):
        assert os.environ["AWS_ENDPOINTS"] == "http://x"
        assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"
    assert "AWS_ENDPOINTS" not in os.environ
    with store_environment(None):
        assert os.environ["AWS_ACCESS_KEY_ID"] == "mine"


def _result(checksum: str = "a" * 128, bad: list[tuple[int, str]] | None = None) -> VerifyResult:
    return VerifyResult("u", "n", 10, 1, "a" * 128, checksum, bad or [])


def test_judge_compares_with_the_recorded_checksum() -> None:
    assert judge("b", _result(), "A" * 128).result == OK
    assert "status.checksum" in judge("b", _result(), "b" * 128).reason
    assert "cfg's checksum" in judge("b", _result("c" * 128), "").reason
    bad = judge("b", _result("", [(i * 2097152, "corrupt") for i in range(7)]), "")
    assert bad.result == FAILED and bad.bad_offsets[-1] == 6 * 2097152
    assert bad.annotation.startswith("failed: 7 bad block(s): offset 0: corrupt")
    assert bad.annotation.endswith("and 2 more")


def test_metrics_text_is_prometheus_exposition() -> None:
    outcomes = [
        Outcome("good", OK, at="2026-11-27T10:00:00Z"),
        Outcome('we"ird', FAILED, "x", at="2026-11-27T10:00:00Z"),
        Outcome("busy", SKIPPED, "in progress"),
    ]
    text = metrics_text(outcomes, "longhorn-system")
    assert 'longhorn_bi_backup_verify_ok{namespace="longhorn-system",backup="good"} 1' in text
    assert 'backup="we\\"ird"} 0' in text
    assert "busy" not in text
    assert "longhorn_bi_backup_verify_timestamp_seconds" in text and "1795773600" in text


def test_recorded_reads_back_only_what_verify_writes() -> None:
    at = "2026-01-01T00:00:00Z"
    sampled = {VERIFY_RESULT: "ok: sampled 1 of 2 blocks (--seed x); ...", VERIFIED_AT: at}
    assert recorded(sampled) == (True, 1767225600.0)
    assert recorded({VERIFY_RESULT: "failed: 1 bad block(s)", VERIFIED_AT: at}) == (
        False,
        1767225600.0,
    )
    assert recorded({VERIFY_RESULT: "error: store unreadable", VERIFIED_AT: at}) == (
        False,
        1767225600.0,
    )
    assert recorded({}) is None
    assert recorded({VERIFY_RESULT: "looks fine to me", VERIFIED_AT: at}) is None
    assert recorded({VERIFY_RESULT: "ok", VERIFIED_AT: "yesterday"}) is None
    assert recorded({VERIFY_RESULT: "ok"}) is None
