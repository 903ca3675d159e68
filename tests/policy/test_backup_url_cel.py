"""LHB201 in CEL: where the policy decides a backup URL, it decides as parse_backup_url.

The CEL form judges backup URLs by their spelling (engine/rules/cel_backup_url.py): the plain
form Longhorn writes, which it accepts, and URLs certainly bad, which it refuses. Elsewhere
the policy says nothing and the webhook judges: there the policy's verdict must be no more
than the Python rule's (never a denial the webhook would not give).
"""

from __future__ import annotations

from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from longhorn_bi.engine.backup_url import parse_backup_url
from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.rules.cel_backup_url import (
    cel_certainly_bad,
    cel_plain,
    is_certainly_bad,
    is_plain,
)
from longhorn_bi.engine.rules.restore import MAX_CEL_PARAMETER
from longhorn_bi.engine.versions import SUPPORTED_VERSIONS
from tests.backup_url_cases import BACKUP_URLS
from tests.policy.runtime import new_env
from tests.policy.test_differential import assert_same, cel_verdict, python_verdict, restore

_ENV = new_env()
_PLAIN: Any = _ENV.compile(cel_plain("object.u"))
_BAD: Any = _ENV.compile(cel_certainly_bad("object.u"))


def _cel(program: Any, url: str) -> bool:
    value = program.eval(_ENV.Activation({"object": {"u": url}})).value()
    assert type(value) is bool, value
    return value


def _parses(url: str) -> bool:
    try:
        parse_backup_url(url)
    except InvalidBackupURL:
        return False
    return True


@settings(max_examples=2000, deadline=None)
@given(url=BACKUP_URLS)
def test_plain_urls_parse_and_certainly_bad_ones_do_not(url: str) -> None:
    plain, bad = _cel(_PLAIN, url), _cel(_BAD, url)
    assert (plain, bad) == (is_plain(url), is_certainly_bad(url))  # the Python mirror
    if plain:
        assert _parses(url), url
    if bad:
        assert not _parses(url), url
    event("plain" if plain else "certainly bad" if bad else "left to the webhook")


@settings(max_examples=1000, deadline=None)
@given(
    line=st.sampled_from(SUPPORTED_VERSIONS),
    url=st.none() | BACKUP_URLS | st.sampled_from(["vfs:///backupstore?backingImage=img"]),
    pad=st.sampled_from(["", " "]),
    target_name=st.sampled_from([None, "", " ", "default"]),
)
def test_restore_verdicts_agree_where_the_policy_decides(
    line: str, url: str | None, pad: str, target_name: str | None
) -> None:
    obj = restore(None if url is None else pad + url + pad, target_name)
    decided = url is None or (
        len(pad + url + pad) <= MAX_CEL_PARAMETER and (is_plain(url) or is_certainly_bad(url))
    )
    if decided:
        assert_same(line, obj, None)
    else:  # the policy leaves it to the webhook: it says nothing of LHB201
        assert "LHB201" not in cel_verdict(line, obj, None)
    found = "LHB201" in python_verdict(line, obj, None)
    event(f"decided: {decided}, LHB201 reported: {found}")


def test_the_forms_longhorn_writes_are_decided() -> None:
    """status.url of a BackupBackingImage, for each target kind, is in the plain form."""
    for url in (
        "s3://backupbucket@us-east-1/?backingImage=parrot",
        "s3://backupbucket@us-east-1/path/to/store/?backingImage=parrot",
        "nfs://longhorn-test-nfs-svc.default:/opt/backupstore?backingImage=parrot",
        "nfs://10.0.0.5:/export?nfsOptions=vers=4.2,soft&backingImage=parrot",
        "cifs://longhorn-test-cifs-svc.default/backupstore?backingImage=parrot",
        "azblob://longhorn-test-azurite@core.windows.net/?backingImage=parrot",
        "vfs:///var/lib/longhorn-backupstore?backingImage=parrot",
    ):
        assert _cel(_PLAIN, url) and _parses(url), url
