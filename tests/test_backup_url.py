"""Backup target and backing-image backup URLs, as Longhorn writes and reads them."""

from __future__ import annotations

import pytest

from longhorn_bi.engine.backup_url import format_backup_url, parse_backup_url, parse_target
from longhorn_bi.engine.errors import InvalidBackupURL


@pytest.mark.parametrize(
    ("url", "scheme", "host", "region", "path"),
    [
        ("s3://backupbucket@us-east-1/", "s3", "backupbucket", "us-east-1", "/"),
        (
            "s3://backupbucket@us-east-1/longhorn/prod/",
            "s3",
            "backupbucket",
            "us-east-1",
            "/longhorn/prod/",
        ),
        ("s3://backupbucket/path/", "s3", "backupbucket", "", "/path/"),
        (
            "nfs://longhorn-test-nfs-svc.default:/opt/backupstore",
            "nfs",
            "longhorn-test-nfs-svc.default",
            "",
            "/opt/backupstore",
        ),
        ("cifs://fileserver/share/longhorn", "cifs", "fileserver", "", "/share/longhorn"),
        (
            "azblob://container@core.windows.net/path/",
            "azblob",
            "container",
            "core.windows.net",
            "/path/",
        ),
        ("azblob://container/path", "azblob", "container", "", "/path"),
        ("vfs:///var/lib/longhorn-backupstore", "vfs", "", "", "/var/lib/longhorn-backupstore"),
        # Go's url.Parse lower-cases the scheme, so Longhorn reads these as s3:// and nfs://.
        ("S3://backupbucket@us-east-1/", "s3", "backupbucket", "us-east-1", "/"),
        ("Nfs://server:/export", "nfs", "server", "", "/export"),
    ],
)
def test_targets_of_every_scheme_parse(
    url: str, scheme: str, host: str, region: str, path: str
) -> None:
    target = parse_target(url)
    assert (target.scheme, target.host, target.region, target.path) == (scheme, host, region, path)
    assert str(target) == url


def test_nfs_options_survive_a_round_trip() -> None:
    target = "nfs://nfs.example:/export?nfsOptions=soft,timeo=150"
    url = format_backup_url(target, "parrot")
    assert url == "nfs://nfs.example:/export?nfsOptions=soft,timeo=150&backingImage=parrot"
    parsed = parse_backup_url(url)
    assert parsed.backing_image == "parrot"
    assert parsed.target.query == (("nfsOptions", "soft,timeo=150"),)


def test_backup_url_is_target_plus_backing_image() -> None:
    assert (
        format_backup_url("s3://backupbucket@us-east-1/", "parrot")
        == "s3://backupbucket@us-east-1/?backingImage=parrot"
    )
    parsed = parse_backup_url("s3://backupbucket@us-east-1/?backingImage=parrot")
    assert parsed.backing_image == "parrot"
    assert parsed.target.host == "backupbucket"
    assert str(parsed) == "s3://backupbucket@us-east-1/?backingImage=parrot"


def test_same_store_ignores_a_trailing_slash() -> None:
    assert parse_target("s3://bucket1@us-east-1/x/").same_store(
        parse_target("s3://bucket1@us-east-1/x")
    )
    assert not parse_target("s3://bucket1@us-east-1/x/").same_store(
        parse_target("s3://bucket2@us-east-1/x/")
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("", "empty"),
        ("backupbucket", "no scheme"),
        ("ftp://host/path", "unsupported scheme"),
        ("s3:///path", "no bucket"),
        ("s3://bucket@us-east-1", "has no path"),
        ("nfs://:/export", "no NFS server"),
        ("nfs://host:2049/export", "has a port"),
        ("cifs://host/", "server and a share"),
        ("azblob://core.windows.net/", "invalid container name 'core.windows.net'"),
        ("azblob://@core.windows.net/", "has no container"),
        ("azblob://a--b@core.windows.net/", "invalid container name"),
        ("azblob://container@core.windows.net", "has no path"),
        ("vfs://relative/path", "absolute local path"),
        ("vfs:///a/../../etc", "'..' path segment"),
        ("vfs:///a/b\x00c", "NUL"),
        ("s3://bucket@us-east-1/ path", "space"),
        ("s3://bucket@us-east-1/\tpath", "control"),
        ("s3://bucket@us-east-1/path\n", "control"),
        ("s3://bucket@us-east-1/\x7fpath", "control"),
        ("s3://bucket@us-east-1/?backingImage=parrot", "is a backup URL"),
    ],
)
def test_invalid_targets_say_why(url: str, expected: str) -> None:
    with pytest.raises(InvalidBackupURL, match=expected):
        parse_target(url)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://backupbucket@us-east-1/", "no 'backingImage=' parameter"),
        ("s3://backupbucket@us-east-1/?backingImage=", "invalid backing image"),
        ("s3://backupbucket@us-east-1/?backingImage=a/b", "invalid backing image"),
        ("s3://backupbucket@us-east-1/?backingImage=..", "invalid backing image"),
        ("s3://backupbucket@us-east-1/?backingImage=a&backingImage=b", "more than one"),
        ("s3://backupbucket@us-east-1/\tx?backingImage=parrot", "control"),
        ("s3://backupbucket@us-east-1/../x?backingImage=parrot", "'..' path segment"),
        ("?backingImage=parrot", "empty"),
    ],
)
def test_invalid_backup_urls_say_why(url: str, expected: str) -> None:
    with pytest.raises(InvalidBackupURL, match=expected):
        parse_backup_url(url)


def test_credentials_in_a_url_are_not_echoed() -> None:
    with pytest.raises(InvalidBackupURL) as caught:
        parse_target("ftp://user:s3cr3t@host/path")
    assert "s3cr3t" not in str(caught.value)


def test_format_refuses_an_invalid_name() -> None:
    with pytest.raises(InvalidBackupURL, match="name"):
        format_backup_url("s3://backupbucket@us-east-1/", "../etc")


@pytest.mark.parametrize(
    "query",
    [
        "backingImage=parrot",
        "backingImage=parrot&nfsOptions=soft",
        "nfsOptions=soft&backingImage=parrot",
        "backingImage=par%72ot",
        "backingImage=parrot&",
    ],
)
def test_the_plain_form_and_the_query_parser_agree(query: str) -> None:
    """`?backingImage=<name>` alone skips the query parser; the answer is the same."""
    url = parse_backup_url(f"nfs://server:/export?{query}")
    assert url.backing_image == "parrot"
    expected_target = "nfs://server:/export" + ("?nfsOptions=soft" if "nfsOptions" in query else "")
    assert url.target == parse_target(expected_target)
