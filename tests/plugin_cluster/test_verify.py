"""`verify` in cluster mode: backups read back where they live, results recorded on them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from longhorn_bi.engine.scrub.outcome import VERIFIED_AT, VERIFY_RESULT
from longhorn_bi.engine.store.drivers import open_store
from tests.plugin_cluster.conftest import NS, Cluster
from tests.plugin_cluster.scrub_support import (
    backup_object,
    notes_of,
    objects,
    target_object,
    vfs_store,
)
from tests.store.s3_server import ACCESS_KEY, SECRET_KEY


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_verify_names_each_bad_backup_and_offset(cluster: Cluster, tmp_path: Path) -> None:
    store = vfs_store(cluster, tmp_path)
    for name, seed in (("good", 1), ("rotten", 2), ("lost", 3), ("renamed", 4)):
        url, checksum, size = store.backup(tmp_path, name, seed=seed)
        recorded = "0" * 128 if name == "renamed" else checksum
        cluster.seed(backup_object(name, url, recorded, target="local", size=size))
    cluster.seed(backup_object("running", "", "", state="InProgress", target="local"))
    gone = f"{store.target}?backingImage=vanished"  # the CR outlived its backup's files
    cluster.seed(backup_object("vanished", gone, "a" * 128, target="local"))
    assert store.root is not None
    rotten_offset, rotten_key = store.block_keys("rotten")[1]
    path = store.root / rotten_key
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    lost_offset, lost_key = store.block_keys("lost")[2]
    (store.root / lost_key).unlink()
    before = _files(store.root)

    result = cluster.cli("verify", "--all")

    assert result.returncode == 1, result.stderr
    lines = {
        line.split()[1].rstrip(":"): line for line in result.stdout.splitlines() if line[:1] != " "
    }
    assert lines["good"].startswith("ok "), result.stdout + result.stderr
    assert lines["rotten"].startswith("FAILED") and f"offset {rotten_offset}" in lines["rotten"]
    assert lines["lost"].startswith("FAILED") and f"offset {lost_offset}" in lines["lost"]
    assert "status.checksum" in lines["renamed"]
    assert lines["running"].startswith("SKIPPED")
    assert lines["vanished"].startswith("FAILED") and "no backup of" in lines["vanished"]
    assert "6 backup(s): 1 ok" in result.stderr and "4 failed" in result.stderr
    assert _files(store.root) == before  # nothing written; the lock file is gone again

    assert notes_of(cluster.server, "good")[VERIFY_RESULT] == "ok"
    assert notes_of(cluster.server, "good")[VERIFIED_AT].endswith("Z")
    assert notes_of(cluster.server, "rotten")[VERIFY_RESULT].startswith("failed: 1 bad block")
    assert VERIFY_RESULT not in notes_of(cluster.server, "running")
    events = {e["involvedObject"]["name"]: e for e in objects(cluster.server, "events")}
    assert sorted(events) == ["lost", "renamed", "rotten", "vanished"]
    assert events["rotten"]["type"] == "Warning"
    assert events["rotten"]["reason"] == "BackupVerifyFailed"


def test_verify_list_and_describe_show_the_result(cluster: Cluster, tmp_path: Path) -> None:
    store = vfs_store(cluster, tmp_path)
    url, checksum, size = store.backup(tmp_path, "good")
    cluster.seed(backup_object("good", url, checksum, target="local", size=size))
    assert cluster.cli("verify", "good").returncode == 0
    listing = cluster.cli("list")
    assert "VERIFIED" in listing.stdout.splitlines()[0]
    assert " ok " in listing.stdout.splitlines()[1] + " "
    described = cluster.cli("describe", "good")
    assert "Verification:" in described.stdout and "Result:     ok" in described.stdout


def test_verify_target_filter_and_json(cluster: Cluster, tmp_path: Path) -> None:
    store = vfs_store(cluster, tmp_path)
    url, checksum, size = store.backup(tmp_path, "mine")
    cluster.seed(backup_object("mine", url, checksum, target="local", size=size))
    cluster.seed(
        backup_object("other", "s3://elsewhere@us-east-1/?backingImage=x", "", target="default")
    )
    result = cluster.cli("verify", "--target", "local", "-o", "json", "--no-record")
    assert result.returncode == 0, result.stderr
    assert [r["backup"] for r in json.loads(result.stdout)["results"]] == ["mine"]
    assert VERIFY_RESULT not in notes_of(cluster.server, "mine")


def test_verify_reads_s3_credentials_from_the_targets_secret(
    cluster: Cluster, tmp_path: Path, s3_bucket: str, moto_endpoint: str, monkeypatch
) -> None:
    target = f"s3://{s3_bucket}@us-east-1/"
    from tests.plugin_cluster.scrub_support import Store

    store = Store(target, None)
    url, checksum, size = store.backup(tmp_path, "cloudy")
    cluster.seed(
        target_object("cloud", target, secret="s3-creds"),
        backup_object("cloudy", url, checksum, target="cloud", size=size),
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s3-creds", "namespace": NS},
            "data": {
                key: base64.b64encode(value.encode()).decode()
                for key, value in (
                    ("AWS_ACCESS_KEY_ID", ACCESS_KEY),
                    ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
                    ("AWS_ENDPOINTS", moto_endpoint),
                )
            },
        },
    )
    # The CLI's own environment has no credentials: they come from the Secret alone.
    env = {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "", "AWS_ENDPOINTS": ""}
    good = cluster.cli("verify", "cloudy", env=env)
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ok")

    offset, key = store.block_keys("cloudy")[0]
    driver = open_store(target)  # the s3_bucket fixture's credentials, in this process
    try:
        driver.write(key, b"not the block")
    finally:
        driver.close()
    bad = cluster.cli("verify", "cloudy", env=env)
    assert bad.returncode == 1
    assert f"offset {offset}" in bad.stdout
    for secret in (SECRET_KEY, ACCESS_KEY):
        assert secret not in bad.stdout + bad.stderr + good.stdout + good.stderr


def _seeds(refs: list[tuple[int, str]], offset: int, fraction: float) -> tuple[str, str]:
    """A seed whose sample draws the block at `offset`, and one whose sample does not."""
    from longhorn_bi.engine.scrub.shards import BlockSample
    from longhorn_bi.engine.store.layout import BlockRef

    blocks = [BlockRef(off, "0" * 64) for off, _ in refs]
    found: dict[bool, str] = {}
    for i in range(200):
        drawn = {b.offset for b in BlockSample(fraction, f"s{i}")("speckled", blocks)}
        found.setdefault(offset in drawn, f"s{i}")
    return found[True], found[False]


def test_sample_reads_some_blocks_and_says_so(cluster: Cluster, tmp_path: Path) -> None:
    store = vfs_store(cluster, tmp_path)
    url, checksum, size = store.backup(tmp_path, "speckled", blocks=8)
    cluster.seed(backup_object("speckled", url, checksum, target="local", size=size))
    refs = store.block_keys("speckled")
    bad_offset, bad_key = refs[3]
    assert store.root is not None
    (store.root / bad_key).write_bytes(b"rot")
    hit, miss = _seeds(refs, bad_offset, 0.25)

    missed = cluster.cli("verify", "speckled", "--sample", "0.25", "--seed", miss)
    assert missed.returncode == 0, missed.stderr
    first = missed.stdout.splitlines()[0]
    assert first.startswith("ok      speckled: sampled ")
    assert f"of 8 blocks (--seed {miss}); the image checksum was not checked" in first
    assert notes_of(cluster.server, "speckled")[VERIFY_RESULT] == "ok: " + first.split(": ", 1)[1]

    again = cluster.cli("verify", "speckled", "--sample", "0.25", "--seed", hit)
    assert again.returncode == 1
    assert (
        again.stdout.startswith("FAILED  speckled: sampled ") and f"(--seed {hit})" in again.stdout
    )
    assert f"offset {bad_offset}" in again.stdout
    assert "checksum was not checked" in notes_of(cluster.server, "speckled")[VERIFY_RESULT]

    drawn = cluster.cli("verify", "speckled", "--sample", "0.25")
    told = drawn.stderr.split("sampling with --seed ", 1)[1].split()[0]
    assert f"(--seed {told})" in notes_of(cluster.server, "speckled")[VERIFY_RESULT]


def test_sample_backups_keeps_the_old_selection(cluster: Cluster, tmp_path: Path) -> None:
    store = vfs_store(cluster, tmp_path)
    for i in range(6):
        url, checksum, size = store.backup(tmp_path, f"b{i}", blocks=1, seed=i)
        cluster.seed(backup_object(f"b{i}", url, checksum, target="local", size=size))
    args = ("verify", "--all", "--sample-backups", "0.5", "--seed", "day-1", "-o", "json")
    first = cluster.cli(*args)
    assert first.returncode == 0, first.stderr
    chosen = [r["backup"] for r in json.loads(first.stdout)["results"]]
    assert 0 < len(chosen) < 6
    assert [r["backup"] for r in json.loads(cluster.cli(*args).stdout)["results"]] == chosen
    assert all(r["reason"] == "" for r in json.loads(first.stdout)["results"])  # every block

    unseeded = cluster.cli("verify", "--all", "--sample-backups", "0.5", "--shards", "2")
    assert unseeded.returncode == 2
    assert "--sample-backups with --shards needs --seed" in unseeded.stderr
