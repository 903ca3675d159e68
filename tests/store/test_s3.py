"""The s3:// driver against a moto server over real HTTP, with injected faults."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, NotFound
from longhorn_bi.engine.store.admin import list_backups, remove_backup
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.layout import BackingImageCfg, block_key, cfg_key
from longhorn_bi.engine.store.restore import restore_backup
from longhorn_bi.engine.store.verify import verify_backup
from tests.store.reference_store import BLOCK, make_sparse_file
from tests.store.s3_server import ACCESS_KEY, SECRET_KEY, FaultProxy

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")


def _image(tmp_path: Path, blocks: int) -> tuple[Path, bytes]:
    chunks = {i * BLOCK: os.urandom(BLOCK) for i in range(blocks) if i % 4 != 2}
    path = tmp_path / "image.raw"
    return path, make_sparse_file(path, blocks * BLOCK, chunks)


def _client(endpoint: str):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


def test_round_trip_on_s3(tmp_path, s3_bucket, fast_locks, moto_endpoint) -> None:
    image, content = _image(tmp_path, 5)
    target = f"s3://{s3_bucket}@us-east-1/backups/"
    result = backup_image(image, target, "parrot", concurrency=3, lock_timings=fast_locks)
    keys = {o["Key"] for o in _client(moto_endpoint).list_objects_v2(Bucket=s3_bucket)["Contents"]}
    assert f"backups/{cfg_key('parrot')}" in keys
    assert sum(1 for k in keys if k.endswith(".blk")) == 4  # block 2 is a hole
    assert not [k for k in keys if k.endswith(".lck")]
    assert [b.name for b in list_backups(target)] == ["parrot"]
    out = tmp_path / "out.raw"
    restore_backup(result.url, out, concurrent_limit=4, lock_timings=fast_locks)
    assert out.read_bytes() == content
    assert verify_backup(result.url, lock_timings=fast_locks).ok
    removed = remove_backup(result.url, lock_timings=fast_locks)
    assert removed.deleted_blocks == 4
    assert "Contents" not in _client(moto_endpoint).list_objects_v2(Bucket=s3_bucket)


def test_faults_are_retried_and_the_transfer_is_byte_exact(
    tmp_path, s3_bucket, fast_locks, moto_endpoint, monkeypatch
) -> None:
    image, content = _image(tmp_path, 6)
    with FaultProxy(moto_endpoint, reset_every=5, error_every=7, truncate_every=3) as proxy:
        monkeypatch.setenv("AWS_ENDPOINTS", proxy.url)
        target = f"s3://{s3_bucket}@us-east-1/"
        result = backup_image(image, target, "faulty", concurrency=3, lock_timings=fast_locks)
        out = tmp_path / "out.raw"
        restore_backup(result.url, out, concurrent_limit=3, lock_timings=fast_locks)
        assert verify_backup(result.url, concurrent_limit=2, lock_timings=fast_locks).ok
    assert out.read_bytes() == content
    assert hashlib.sha512(content).hexdigest() == result.checksum
    assert proxy.injected["reset"] > 0 and proxy.injected["error"] > 0
    assert proxy.injected["truncate"] > 0


def test_half_set_credentials_are_refused(tmp_path, s3_bucket, monkeypatch) -> None:
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    image, _ = _image(tmp_path, 1)
    with pytest.raises(InvalidInput, match="both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"):
        backup_image(image, f"s3://{s3_bucket}@us-east-1/", "parrot")


def _run(*args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=90, check=False, **kwargs
    )


def test_secrets_never_show_in_output_or_errors(tmp_path, s3_bucket, monkeypatch) -> None:
    image, _ = _image(tmp_path, 1)
    env = dict(os.environ)
    outputs = []
    good = _run(
        "store",
        "backup",
        str(image),
        "--target",
        f"s3://{s3_bucket}@us-east-1/",
        "--name",
        "parrot",
        "-o",
        "json",
        env=env,
    )
    assert good.returncode == 0, good.stderr
    outputs.append(good)
    outputs.append(_run("store", "ls", "s3://no-such-bucket@us-east-1/", env=env))
    assert outputs[-1].returncode == 1 and "does not exist" in outputs[-1].stderr
    outputs.append(_run("--debug", "store", "ls", "s3://no-such-bucket@us-east-1/", env=env))
    refused = {**env, "AWS_ENDPOINTS": "http://127.0.0.1:9"}
    outputs.append(_run("store", "ls", f"s3://{s3_bucket}@us-east-1/", env=refused))
    assert outputs[-1].returncode == 1 and "127.0.0.1:9" in outputs[-1].stderr
    half = {k: v for k, v in env.items() if k != "AWS_ACCESS_KEY_ID"}
    outputs.append(_run("store", "ls", f"s3://{s3_bucket}@us-east-1/", env=half))
    assert outputs[-1].returncode == 2
    for done in outputs:
        assert "Traceback" not in done.stderr or done.args[1] == "--debug"
        for secret in (SECRET_KEY, ACCESS_KEY):
            assert secret not in done.stdout and secret not in done.stderr


def test_sigkill_midway_then_rerun_completes(tmp_path, s3_bucket, moto_endpoint) -> None:
    image, content = _image(tmp_path, 16)
    client = _client(moto_endpoint)
    prefix = "kill/"
    target = f"s3://{s3_bucket}@us-east-1/{prefix}"
    cfg_name = prefix + cfg_key("parrot")
    with FaultProxy(moto_endpoint, delay=0.08) as proxy:
        env = {**os.environ, "AWS_ENDPOINTS": proxy.url}
        argv = [
            EXE,
            "store",
            "backup",
            str(image),
            "--target",
            target,
            "--name",
            "parrot",
            "--concurrency",
            "2",
        ]
        process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                listed = client.list_objects_v2(Bucket=s3_bucket, Prefix=prefix).get("Contents", [])
                if sum(1 for o in listed if o["Key"].endswith(".blk")) >= 3:
                    break
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
        finally:
            process.wait(timeout=30)
            process.stdout.close()  # type: ignore[union-attr]
            process.stderr.close()  # type: ignore[union-attr]
    assert process.returncode == -signal.SIGKILL
    raw = client.get_object(Bucket=s3_bucket, Key=cfg_name)["Body"].read()
    partial = BackingImageCfg.from_json(raw)
    assert not partial.complete and partial.blocks == []  # the in-progress cfg claims nothing
    stored = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix=prefix)["Contents"]]
    assert 3 <= sum(1 for k in stored if k.endswith(".blk")) < 12

    rerun = ("store", "backup", str(image), "--target", target, "--name", "parrot", "-o", "json")
    # The killed writer's lock is still fresh: it may be a live writer, whose in-progress cfg
    # is not overwritten (exit 1, retry later).
    busy = _run(*rerun)
    assert busy.returncode == 1 and "may still be writing" in busy.stderr, busy.stderr
    # Once its lock is gone (expired after 150 s; removed here), the backup is redone.
    locks = client.list_objects_v2(Bucket=s3_bucket, Prefix=prefix + "backupstore/volumes/")
    for item in locks["Contents"]:
        client.delete_object(Bucket=s3_bucket, Key=item["Key"])
    again = _run(*rerun)
    assert again.returncode == 0, again.stderr
    final = BackingImageCfg.from_json(
        client.get_object(Bucket=s3_bucket, Key=cfg_name)["Body"].read()
    )
    assert final.complete and len(final.blocks) == 12
    for ref in final.blocks:  # every block the complete cfg names is stored
        client.head_object(Bucket=s3_bucket, Key=prefix + block_key(ref.checksum))
    out = tmp_path / "out.raw"
    done = _run("store", "restore", f"{target}?backingImage=parrot", "--output", str(out))
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == content


def test_missing_bucket_is_a_clear_error(s3_bucket, fast_locks) -> None:
    with pytest.raises(BackupstoreError, match="bucket 'missing-bucket' does not exist"):
        list_backups("s3://missing-bucket@us-east-1/")


def test_s3_settings_from_the_environment(s3_bucket, monkeypatch) -> None:
    from longhorn_bi.engine.backup_url import parse_target
    from longhorn_bi.engine.store.drivers.s3 import S3Store

    target = parse_target(f"s3://{s3_bucket}@us-east-1/")
    # Compared as s3_service.go compares it: only "true" and "false" count, anything else
    # is unset, which means path style with a custom endpoint.
    for value, style in (("maybe", "path"), ("True", "path"), ("true", "virtual")):
        monkeypatch.setenv("VIRTUAL_HOSTED_STYLE", value)
        store = S3Store(target)
        assert store.client.meta.config.s3["addressing_style"] == style
        store.close()
    monkeypatch.setenv("VIRTUAL_HOSTED_STYLE", "false")
    monkeypatch.setenv("AWS_CERT", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    store = S3Store(target)
    assert store.client.meta.config.s3["addressing_style"] == "path"
    cert_file = store._cert_file
    assert cert_file is not None and Path(cert_file).read_text().startswith("-----BEGIN")
    store.close()
    assert not Path(cert_file).exists()
    monkeypatch.delenv("AWS_CERT")
    monkeypatch.setenv("VIRTUAL_HOSTED_STYLE", "true")
    assert S3Store(target).client.meta.config.s3["addressing_style"] == "virtual"


def test_bounded_reads_are_one_ranged_get(s3_bucket) -> None:
    from longhorn_bi.engine.store.drivers import open_store
    from longhorn_bi.engine.store.drivers.base import TooLarge

    store = open_store(f"s3://{s3_bucket}@us-east-1/")
    store.write("objects/empty", b"")
    store.write("objects/ten", b"0123456789")
    assert store.read_at_most("objects/empty", 10) == b""  # type: ignore[attr-defined]
    assert store.read_at_most("objects/ten", 10) == b"0123456789"  # type: ignore[attr-defined]
    with pytest.raises(TooLarge):
        store.read_at_most("objects/ten", 9)  # type: ignore[attr-defined]
    with pytest.raises(NotFound):
        store.read_at_most("objects/missing", 10)  # type: ignore[attr-defined]
