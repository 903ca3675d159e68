"""S3 URLs and settings read as Longhorn's s3 driver reads them, and credentials in any form
(keys, userinfo of AWS_ENDPOINTS and proxies, URL-encoded) never printed or logged."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit

import boto3
import pytest

from longhorn_bi.engine.backup_url import parse_target
from longhorn_bi.engine.store.admin import list_backups
from longhorn_bi.engine.store.backup import backup_image
from longhorn_bi.engine.store.drivers.nfs import mount_source
from tests.store.reference_store import BLOCK, make_sparse_file
from tests.store.s3_server import ACCESS_KEY, SECRET_KEY

EXE = str(Path(sys.executable).parent / "kubectl-longhorn_bi")
PASSWORD = "p@ss/w0rd+x"  # needs encoding in a URL
PROXY_PASSWORD = "pr0xy:S3cret"


def _forms(secret: str) -> list[str]:
    encoded = quote(secret, safe="")
    return [secret, encoded, encoded.lower(), quote(secret)]


SECRETS = [form for s in (SECRET_KEY, ACCESS_KEY, PASSWORD, PROXY_PASSWORD) for form in _forms(s)]


def _image(tmp_path: Path) -> Path:
    path = tmp_path / "image.raw"
    make_sparse_file(path, 2 * BLOCK, {0: os.urandom(BLOCK)})
    return path


def _with_userinfo(endpoint: str, user: str, password: str) -> str:
    parts = urlsplit(endpoint)
    return f"{parts.scheme}://{user}:{quote(password, safe='')}@{parts.netloc}"


def test_keys_are_cleaned_as_longhorn_cleans_them(
    tmp_path, s3_bucket, moto_endpoint, fast_locks
) -> None:
    result = backup_image(
        _image(tmp_path), f"s3://{s3_bucket}@us-east-1/a//b/", "parrot", lock_timings=fast_locks
    )
    client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert keys and all(key.startswith("a/b/backupstore/") for key in keys)
    assert [b.name for b in list_backups(f"s3://{s3_bucket}@us-east-1/a/b")] == ["parrot"]
    assert parse_target(f"s3://{s3_bucket}@us-east-1/a/b").same_store(
        parse_target(result.url.split("?")[0])
    )


def test_an_s3_url_needs_a_path(tmp_path) -> None:
    done = subprocess.run(
        [EXE, "store", "ls", "s3://bucket@us-east-1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "has no path" in done.stderr


def test_ipv6_nfs_servers_keep_their_brackets() -> None:
    target = parse_target("nfs://[fd00::1]:/export/backups")
    assert mount_source(target) == "[fd00::1]:/export/backups"  # Go's u.Host + u.Path
    assert mount_source(parse_target("nfs://nfs.local:/export")) == "nfs.local:/export"


def test_no_credential_in_any_log_line(
    tmp_path, s3_bucket, moto_endpoint, monkeypatch, caplog, fast_locks
) -> None:
    monkeypatch.setenv("AWS_ENDPOINTS", _with_userinfo(moto_endpoint, "minio", PASSWORD))
    caplog.set_level(logging.DEBUG)
    result = backup_image(
        _image(tmp_path), f"s3://{s3_bucket}@us-east-1/", "parrot", lock_timings=fast_locks
    )
    assert list_backups(f"s3://{s3_bucket}@us-east-1/")[0].url == result.url
    logged = caplog.text
    assert "Sending http request" in logged and "***" in logged  # botocore logged, redacted
    for secret in SECRETS:
        assert secret not in logged


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EXE, *args], capture_output=True, text=True, timeout=90, env=env, check=False
    )


def test_no_credential_in_any_message(tmp_path, s3_bucket, moto_endpoint) -> None:
    env = dict(os.environ)
    refused = "http://127.0.0.1:9"
    cases = [
        {"AWS_ENDPOINTS": _with_userinfo(refused, "minio", PASSWORD)},
        {"HTTP_PROXY": _with_userinfo(refused, "proxy", PROXY_PASSWORD)},
        {"AWS_ENDPOINTS": "not a url " + quote(PASSWORD, safe="")},
    ]
    for extra in cases:
        for debug in ([], ["--debug"]):
            done = _run(*debug, "store", "ls", f"s3://{s3_bucket}@us-east-1/", env={**env, **extra})
            assert done.returncode in (1, 2), done.stderr
            assert "***" in done.stderr or "not a usable endpoint" in done.stderr, done.stderr
            for secret in SECRETS:
                assert secret not in done.stdout + done.stderr, (extra, done.stderr)


@pytest.mark.parametrize(
    ("value", "style"), [("true", "virtual"), ("false", "path"), ("TRUE", "path")]
)
def test_virtual_hosted_style_is_compared_exactly(
    s3_bucket, monkeypatch, value: str, style: str
) -> None:
    from longhorn_bi.engine.store.drivers.s3 import S3Store

    monkeypatch.setenv("VIRTUAL_HOSTED_STYLE", value)
    store = S3Store(parse_target(f"s3://{s3_bucket}@us-east-1/"))
    assert store.client.meta.config.s3["addressing_style"] == style
    store.close()
