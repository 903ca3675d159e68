"""Every rule of BackingImage and BackupBackingImage is reachable through a review."""

from __future__ import annotations

from typing import Any

import pytest

from longhorn_bi.engine.backup_url import format_backup_url
from longhorn_bi.engine.facts import BackingImageFact, BackupTargetFact, ClusterFacts
from longhorn_bi.engine.rules import RULES, Severity
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.webhook.app import Settings, create_app
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.metrics import Metrics
from tests.webhook.helpers import (
    OTHER_CHECKSUM,
    TARGET_URL,
    V112,
    backing_image,
    backup,
    cluster_facts,
    review,
)

CHECKED = {"BackingImage", "BackupBackingImage"}
V16 = LonghornVersion(1, 6)
# Rules a review cannot reach yet, and why.
NOT_THROUGH_REVIEWS = {
    # It compares with the stored object: an UPDATE, tested on its own below.
    "LHB109",
}


def _with(obj: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    node = obj
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return obj


def _restore(**params: str) -> dict[str, Any]:
    obj = backing_image()
    obj["spec"]["sourceParameters"].update(params)
    return obj


# rule id -> (object, Longhorn version) that breaks exactly that rule among others
CASES: dict[str, tuple[dict[str, Any], LonghornVersion]] = {
    "LHB001": (_with(backing_image(), ("apiVersion",), "longhorn.io/v1beta1"), V112),
    "LHB002": (_with(backing_image(), ("metadata", "namespace"), "default"), V112),
    "LHB003": (_with(backing_image(), ("metadata", "name"), "not valid"), V112),
    "LHB004": (_with(backing_image(), ("metadata", "labels"), {"bad key!": "x"}), V112),
    "LHB005": (backing_image(minNumberOfCopies="2"), V112),
    "LHB006": (backing_image(sourcetype="restore"), V112),
    "LHB101": (backing_image(sourceType="ftp"), V112),
    "LHB102": (_restore(backup_url="x"), V112),
    "LHB103": (backing_image(checksum="abc"), V112),
    "LHB104": (
        backing_image(sourceType="download", sourceParameters={"url": "http://127.0.0.1/i"}),
        V112,
    ),
    "LHB105": (backing_image(minNumberOfCopies=-1), V112),
    "LHB106": (backing_image(sourceType="clone", sourceParameters={}), V112),
    "LHB107": (backing_image(sourceType="export-from-volume", sourceParameters={}), V112),
    "LHB108": (backing_image(dataEngine="v2"), V112),
    "LHB201": (_restore(**{"backup-url": "http://example.com/x"}), V112),
    "LHB202": (_restore(**{"concurrent-limit": "0"}), V112),
    "LHB203": (_restore(**{"backup-target-name": "Bad!"}), V112),
    "LHB204": (backing_image(checksum=None), V112),
    "LHB301": (backup(userCreated=None), V112),
    "LHB302": (backup(backingImage=None), V112),
    "LHB303": (backup(backingImage="other-name", backupTargetName=None), V16),
    "LHB304": (backup(backupTargetName="Bad!"), V112),
    "LHB401": (backup(backupTargetName="down"), V112),
    "LHB402": (backup(backingImage="ghost"), V112),
    "LHB403": (_with(backup(backingImage="parrot"), ("metadata", "name"), "parrot-again"), V112),
    "LHB404": (
        _restore(**{"backup-url": format_backup_url("s3://elsewhere@us-east-1/x/", "parrot")}),
        V112,
    ),
    "LHB405": (backing_image(checksum=OTHER_CHECKSUM), V112),
    "LHB406": (
        backing_image(sourceType="clone", sourceParameters={"backing-image": "ghost"}),
        V112,
    ),
    "LHB407": (_restore(**{"backup-target-name": "s3-no-secret"}), V112),
    "LHB408": (
        backing_image(sourceType="export-from-volume", sourceParameters={"volume-name": "gone"}),
        V112,
    ),
}


def _drop_none(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    return obj


def test_the_cases_cover_every_rule_of_the_checked_kinds() -> None:
    expected = {r.id for r in RULES if r.kinds & CHECKED} - NOT_THROUGH_REVIEWS
    assert set(CASES) == expected


@pytest.mark.asyncio
@pytest.mark.parametrize("rule_id", sorted(CASES))
async def test_rule_reaches_the_answer(aiohttp_client, rule_id: str) -> None:
    obj, version = CASES[rule_id]
    facts = cluster_facts()
    # `fresh` is the image of the default backup() object; it exists and is ready.
    facts = facts.merged(
        ClusterFacts(
            backup_targets=(
                BackupTargetFact("down", "nfs://down.example:/export", False),
                BackupTargetFact("s3-no-secret", "s3://bucket@us-east-1/", True, ""),
            ),
            backing_images=(BackingImageFact("fresh", "", True),),
            complete=True,
        )
    )
    client = await aiohttp_client(create_app(Settings(), StaticFacts(version, facts), Metrics()))
    resp = await client.post("/validate", json=review(_drop_none(obj)))
    assert resp.status == 200
    answer = (await resp.json())["response"]
    severity = next(r.severity for r in RULES if r.id == rule_id)
    if severity is Severity.ERROR:
        assert answer["allowed"] is False
        assert answer["status"]["message"].startswith("denied by longhorn-bi: ")
        assert f"[{rule_id}]" in answer["status"]["message"]
    else:
        assert any(w.startswith(f"[{rule_id}]") for w in answer.get("warnings", []))


@pytest.mark.asyncio
async def test_a_valid_restore_and_backup_are_allowed_without_warnings(aiohttp_client) -> None:
    facts = cluster_facts().merged(
        type(cluster_facts())(backing_images=(BackingImageFact("fresh", "", True),), complete=True)
    )
    client = await aiohttp_client(create_app(Settings(), StaticFacts(V112, facts), Metrics()))
    for obj in (backing_image(), backup()):
        resp = await client.post("/validate", json=review(obj))
        answer = (await resp.json())["response"]
        assert answer == {"uid": answer["uid"], "allowed": True}, (obj, answer)
    assert TARGET_URL in backing_image()["spec"]["sourceParameters"]["backup-url"]


@pytest.mark.asyncio
async def test_one_message_lists_every_error_with_its_rule_id(aiohttp_client) -> None:
    client = await aiohttp_client(
        create_app(Settings(), StaticFacts(V112, cluster_facts()), Metrics())
    )
    obj = _restore(**{"concurrent-limit": "0"})
    obj["spec"]["checksum"] = "XYZ"
    resp = await client.post("/validate", json=review(obj))
    message = (await resp.json())["response"]["status"]["message"]
    assert message.startswith("denied by longhorn-bi: [LHB103] spec.checksum: ")
    assert "; [LHB202] spec.sourceParameters.concurrent-limit: " in message


@pytest.mark.asyncio
async def test_an_update_that_changes_the_secret_is_denied(aiohttp_client) -> None:
    # LHB109 needs the stored object, which decide passes to the rules on UPDATE only.
    stored = backing_image()
    stored["spec"]["secret"], stored["spec"]["secretNamespace"] = "key-1", "longhorn-system"
    changed = backing_image()
    changed["spec"]["secret"], changed["spec"]["secretNamespace"] = "key-2", "longhorn-system"
    client = await aiohttp_client(
        create_app(Settings(), StaticFacts(V112, cluster_facts()), Metrics())
    )
    resp = await client.post("/validate", json=review(changed, old=stored, operation="UPDATE"))
    answer = (await resp.json())["response"]
    assert answer["allowed"] is False
    assert "[LHB109] spec.secret" in answer["status"]["message"]
    # The same object unchanged is no violation of LHB109.
    resp = await client.post("/validate", json=review(stored, old=stored, operation="UPDATE"))
    answer = (await resp.json())["response"]
    assert "LHB109" not in answer.get("status", {}).get("message", "")
