"""URL credentials never leave in text; the URL parsers on the review path take any string."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from longhorn_bi.engine.backup_url import parse_backup_url, parse_target
from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.text_redaction import clip, redact_urls


@pytest.mark.parametrize(
    ("text", "shown", "hidden"),
    [
        (
            "target offsite (cifs://admin:hunter2@files/share) is down",
            "cifs://***@files/share",
            "hunter2",
        ),
        ("cifs://admin:p@ss@files/share", "cifs://***@files/share", "p@ss"),
        ("cifs://admin%3Ahunter2@files/share", "cifs://***@files", "hunter2"),
        ("s3://AKIA:hunter2@us-east-1/", "s3://***@us-east-1/", "hunter2"),
        ("https://h/x?X-Amz-Signature=hunter2&a=1", "X-Amz-Signature=***&a=1", "hunter2"),
        ("https://h/x?password=hunter2", "password=***", "hunter2"),
        ("nfs://user@host:/export", "nfs://***@host:/export", "user@"),
    ],
)
def test_credentials_are_masked(text: str, shown: str, hidden: str) -> None:
    redacted = redact_urls(text)
    assert shown in redacted
    assert hidden not in redacted


def test_store_names_stay_readable() -> None:
    # Longhorn's s3://bucket@region and azblob://container@endpoint name no user.
    for text in ("s3://backups@us-east-1/lh?backingImage=parrot", "azblob://c@core.windows.net/"):
        assert redact_urls(text) == text


def test_clip_says_how_much_was_cut() -> None:
    assert clip("abc", 5) == "abc"
    assert clip("x" * 10, 4) == "xxxx... (6 more characters)"


_URLISH = st.text(alphabet=st.sampled_from(list("[]%@:/?#&= .-_aZ0é€\x00\t")), max_size=40)


@given(
    text=st.one_of(
        st.text(max_size=60),
        _URLISH,
        st.sampled_from(["s3://", "cifs://", "nfs://", "azblob://", "http://["]).flatmap(
            lambda scheme: _URLISH.map(lambda tail: scheme + tail)
        ),
    )
)
def test_parsers_take_every_string(text: str) -> None:
    redact_urls(text)
    for parse in (parse_target, parse_backup_url):
        try:
            parse(text)
        except InvalidBackupURL as exc:
            assert exc.message
