"""The review endpoint through aiohttp's test client: answers, channels, shape, metrics, logs."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import pytest

from longhorn_bi.engine.facts import ClusterFacts
from longhorn_bi.webhook.app import Settings, create_app, create_metrics_app
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.listener import Limits
from longhorn_bi.webhook.metrics import Metrics
from tests.webhook.conftest import LogCapture
from tests.webhook.helpers import (
    LONGHORN_SA,
    V112,
    BrokenFacts,
    backing_image,
    backup,
    cluster_facts,
    review,
)

# AdmissionReview v1 (k8s.io/api/admission/v1): the fields a response may carry.
STATUS_SCHEMA = {
    "type": "object",
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string"},
        "reason": {"type": "string"},
        "status": {"type": "string"},
        "metadata": {"type": "object"},
        "details": {"type": "object"},
    },
    "additionalProperties": False,
}
REVIEW_RESPONSE_SCHEMA = {
    "type": "object",
    "required": ["apiVersion", "kind", "response"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "admission.k8s.io/v1"},
        "kind": {"const": "AdmissionReview"},
        "response": {
            "type": "object",
            "required": ["uid", "allowed"],
            "additionalProperties": False,
            "properties": {
                "uid": {"type": "string", "minLength": 1},
                "allowed": {"type": "boolean"},
                "status": STATUS_SCHEMA,
                "patch": {"type": "string"},
                "patchType": {"const": "JSONPatch"},
                "auditAnnotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "warnings": {"type": "array", "items": {"type": "string"}},
            },
        },
    },
}


async def _client(aiohttp_client, facts=None, version=V112, logger=None, metrics=None):
    source = StaticFacts(version, facts if facts is not None else cluster_facts())
    app = create_app(Settings(), source, metrics or Metrics(), logger=logger)
    return await aiohttp_client(app)


async def _answer(client, body: Any) -> dict[str, Any]:
    resp = await client.post("/validate", json=body)
    assert resp.status == 200, await resp.text()
    data = await resp.json()
    jsonschema.validate(data, REVIEW_RESPONSE_SCHEMA)
    response: dict[str, Any] = data["response"]
    return response


def _bad(obj: dict[str, Any]) -> dict[str, Any]:
    obj["spec"]["sourceParameters"]["concurrent-limit"] = "0"
    return obj


@pytest.mark.asyncio
async def test_deny_echoes_uid_with_a_403_status(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    answer = await _answer(client, review(_bad(backing_image()), uid="uid-123"))
    assert answer["uid"] == "uid-123"
    assert answer["allowed"] is False
    assert answer["status"]["code"] == 403
    assert answer["status"]["reason"] == "Forbidden"


@pytest.mark.asyncio
async def test_warnings_go_to_response_warnings_and_allow(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    obj = backing_image()
    del obj["spec"]["checksum"]
    answer = await _answer(client, review(obj))
    assert answer["allowed"] is True
    assert "status" not in answer
    assert [w[:8] for w in answer["warnings"]] == ["[LHB204]"]


@pytest.mark.asyncio
async def test_delete_is_never_checked(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    answer = await _answer(client, review(None, operation="DELETE", old=_bad(backing_image())))
    assert answer["allowed"] is True
    assert "warnings" not in answer


@pytest.mark.asyncio
async def test_objects_longhorn_writes_are_never_denied(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    # Synced from the store: named <image>-<hex>, for an image this cluster does not have.
    synced = backup("ghost-0a1b2c3d", userCreated=False, backingImage="ghost")
    answer = await _answer(client, review(synced, user=LONGHORN_SA))
    assert answer == {"uid": answer["uid"], "allowed": True}
    # Longhorn's 1.7 -> 1.8 upgrade sets spec.backingImage from status, possibly empty
    # (longhorn-manager upgrade/v17xto180/upgrade.go, v1.8.0): an UPDATE by its account.
    old = backup("parrot", userCreated=True)
    del old["spec"]["backingImage"]
    rewritten = backup("parrot", userCreated=True, backingImage="")
    answer = await _answer(client, review(rewritten, operation="UPDATE", old=old, user=LONGHORN_SA))
    assert answer == {"uid": answer["uid"], "allowed": True}


@pytest.mark.asyncio
async def test_user_created_false_exempts_nothing_for_a_user(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    synced = backup("ghost-0a1b2c3d", userCreated=False, backingImage="ghost")
    answer = await _answer(client, review(synced))
    assert answer["allowed"] is False
    assert "[LHB402] spec.backingImage" in answer["status"]["message"]
    # Nor does an UPDATE that flips it, nor another service account of Longhorn's namespace.
    made = backup("ghost-0a1b2c3d", userCreated=True, backingImage="ghost")
    flipped = await _answer(client, review(synced, operation="UPDATE", old=made))
    assert flipped["allowed"] is True  # the same error with the same value: not new
    other = "system:serviceaccount:longhorn-system:default"
    assert (await _answer(client, review(synced, user=other)))["allowed"] is False


@pytest.mark.asyncio
async def test_the_exempt_accounts_are_configurable(aiohttp_client) -> None:
    source = StaticFacts(V112, cluster_facts())
    settings = Settings(exempt_accounts=("gitops-bot", "system:serviceaccount:argocd:argocd"))
    client = await aiohttp_client(create_app(settings, source, Metrics()))
    bad = _bad(backing_image())
    for user, allowed in [
        ("system:serviceaccount:longhorn-system:gitops-bot", True),
        ("system:serviceaccount:argocd:argocd", True),
        (LONGHORN_SA, False),  # no longer listed
        ("gitops-bot", False),  # a bare name means a service account in Longhorn's namespace
    ]:
        assert (await _answer(client, review(bad, user=user)))["allowed"] is allowed, user


@pytest.mark.asyncio
async def test_update_excuses_only_the_same_error_with_the_same_value(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    stored = _bad(backing_image())
    # Another field changes: the stored error stays, not denied.
    relabelled = _bad(backing_image())
    relabelled["metadata"]["labels"] = {"team": "storage"}
    answer = await _answer(client, review(relabelled, operation="UPDATE", old=stored))
    assert answer["allowed"] is True
    assert "already true of the stored object" in answer["warnings"][0]
    # The same rule at the same field, but a new bad value: denied.
    worse = _bad(backing_image())
    worse["spec"]["sourceParameters"]["concurrent-limit"] = "-5"
    answer = await _answer(client, review(worse, operation="UPDATE", old=stored))
    assert answer["allowed"] is False


@pytest.mark.asyncio
async def test_dry_run_gets_the_same_verdict(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    real = await _answer(client, review(_bad(backing_image()), uid="a"))
    dry = await _answer(client, review(_bad(backing_image()), uid="a", dry_run=True))
    assert dry == real


@pytest.mark.asyncio
async def test_namespace_comes_from_the_request_when_the_object_lacks_it(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    obj = backing_image()
    del obj["metadata"]["namespace"]
    answer = await _answer(client, review(obj, uid="x"))
    assert answer == {"uid": "x", "allowed": True}
    answer = await _answer(client, review(obj, uid="y", namespace="default"))
    assert answer["allowed"] is False
    assert "[LHB002] metadata.namespace" in answer["status"]["message"]


@pytest.mark.asyncio
async def test_other_kinds_and_groups_are_allowed(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    body = review(_bad(backing_image()))
    body["request"]["kind"] = {"group": "longhorn.io", "version": "v1beta2", "kind": "Volume"}
    assert (await _answer(client, body))["allowed"] is True
    body = review(_bad(backing_image()))
    body["request"]["kind"]["group"] = "example.com"
    assert (await _answer(client, body))["allowed"] is True


@pytest.mark.asyncio
async def test_update_denies_only_new_errors(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    old = _bad(backing_image())
    # Longhorn adds a finalizer to an object that already broke a rule: allowed, warned.
    new = _bad(backing_image())
    new["metadata"]["finalizers"] = ["longhorn.io"]
    answer = await _answer(client, review(new, operation="UPDATE", old=old))
    assert answer["allowed"] is True
    assert any(w.startswith("[LHB202]") and "already true" in w for w in answer["warnings"])
    # A user update that adds a new error is denied, naming only the new one.
    newer = _bad(backing_image())
    newer["spec"]["checksum"] = "nothex"
    answer = await _answer(client, review(newer, operation="UPDATE", old=old))
    assert answer["allowed"] is False
    assert "[LHB103]" in answer["status"]["message"]
    assert "[LHB202]" not in answer["status"]["message"]


@pytest.mark.asyncio
async def test_an_object_being_deleted_is_allowed(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    new = _bad(backing_image())
    new["spec"]["checksum"] = "nothex"
    new["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    answer = await _answer(client, review(new, operation="UPDATE", old=backing_image()))
    assert answer["allowed"] is True


MALFORMED: list[tuple[bytes, str]] = [
    (b"", "not JSON"),
    (b"{", "not JSON"),
    (b"\xff\xfe", "not JSON"),
    (b"[]", "must be a JSON object"),
    (b'{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview"}', "apiVersion/kind"),
    (b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}', "request is missing"),
    (
        b'{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {}}',
        "request.uid",
    ),
    (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
]


@pytest.mark.asyncio
@pytest.mark.parametrize(("body", "reason"), MALFORMED)
async def test_malformed_reviews_get_400_with_a_reason(aiohttp_client, body, reason) -> None:
    metrics = Metrics()
    client = await _client(aiohttp_client, metrics=metrics)
    resp = await client.post("/validate", data=body)
    assert resp.status == 400
    data = await resp.json()
    assert data["code"] == 400
    assert reason in data["message"]
    assert metrics.malformed._value.get() == 1


def _field_cases() -> list[tuple[str, Any, str]]:
    return [
        ("uid", 7, "request.uid must be a string"),
        ("operation", "PATCH", "request.operation"),
        ("kind", "BackingImage", "request.kind must be an object"),
        ("object", [], "request.object must be an object"),
        ("object", None, "request.object is required"),
        ("oldObject", None, "request.oldObject is required for UPDATE"),
        ("dryRun", "yes", "request.dryRun must be a boolean"),
        ("namespace", 3, "request.namespace must be a string"),
    ]


@pytest.mark.asyncio
@pytest.mark.parametrize(("field", "value", "reason"), _field_cases())
async def test_bad_request_fields_are_named(aiohttp_client, field, value, reason) -> None:
    client = await _client(aiohttp_client)
    body = review(backing_image(), operation="UPDATE", old=backing_image())
    body["request"][field] = value
    resp = await client.post("/validate", json=body)
    assert resp.status == 400
    assert reason in (await resp.json())["message"]


@pytest.mark.asyncio
async def test_the_body_size_is_bounded(aiohttp_client) -> None:
    source = StaticFacts(V112, cluster_facts())
    app = create_app(Settings(limits=Limits(max_body_bytes=64 * 1024)), source, Metrics())
    client = await aiohttp_client(app)
    obj = backing_image()
    obj["metadata"]["annotations"] = {"big": "x" * 70_000}
    resp = await client.post("/validate", json=review(obj))
    assert resp.status == 413
    assert "larger than 65536 bytes" in (await resp.json())["message"]
    obj["metadata"]["annotations"] = {"big": "x" * 50_000}
    resp = await client.post("/validate", json=review(obj))
    assert resp.status == 200


@pytest.mark.asyncio
async def test_deep_nesting_is_a_denial_or_a_400_never_a_500(aiohttp_client) -> None:
    client = await _client(aiohttp_client)
    body = review(backing_image())
    # 900 levels: json.loads copes; the field-type rule reports the list without descending.
    raw = json.dumps(body).replace('"concurrent-limit": "2"', '"x": ' + "[" * 900 + "]" * 900)
    answer = (await (await client.post("/validate", data=raw)).json())["response"]
    assert answer["allowed"] is False
    assert "[LHB005] spec.sourceParameters.x: " in answer["status"]["message"]
    # 5000 levels: too deep for the JSON decoder, a 400 that says so.
    raw = json.dumps(body).replace('"concurrent-limit": "2"', '"x": ' + "[" * 5000 + "]" * 5000)
    resp = await client.post("/validate", data=raw)
    assert resp.status == 400
    assert "not JSON" in (await resp.json())["message"]


@pytest.mark.asyncio
async def test_an_internal_error_is_a_500_and_logs(aiohttp_client) -> None:
    logs = LogCapture()
    app = create_app(Settings(), BrokenFacts(V112, ClusterFacts()), Metrics(), logger=logs.logger)
    client = await aiohttp_client(app)
    resp = await client.post("/validate", json=review(backing_image(), uid="u-err"))
    # Never allowed: the API server applies the webhook's failurePolicy to a 500.
    assert resp.status == 500
    status = await resp.json()
    assert status["kind"] == "Status"
    assert "internal error" in status["message"]
    assert "KeyError" not in status["message"]  # no traceback for the caller
    (record,) = [r for r in logs.records() if r["msg"] == "review failed"]
    assert record["uid"] == "u-err"
    assert "KeyError" in str(record["exc"])


@pytest.mark.asyncio
async def test_before_version_detection_the_failure_policy_decides(aiohttp_client) -> None:
    client = await _client(aiohttp_client, version=None)
    resp = await client.post("/validate", json=review(_bad(backing_image())))
    assert resp.status == 503
    assert "still starting" in (await resp.json())["message"]


@pytest.mark.asyncio
async def test_logged_strings_from_the_request_are_bounded(aiohttp_client) -> None:
    logs = LogCapture()
    client = await _client(aiohttp_client, logger=logs.logger)
    obj = _bad(backing_image("x" * 50_000))
    await _answer(client, review(obj, uid="u" * 50_000, user="y" * 50_000))
    (record,) = [r for r in logs.records() if r["msg"] == "review"]
    for key in ("uid", "object_name", "user"):
        assert len(str(record[key])) < 400, key


def test_log_fields_are_bounded_and_carry_no_url_credentials() -> None:
    logs = LogCapture()
    logs.logger.warning(
        "x", extra={"error": "cannot reach cifs://admin:hunter2@files/share " + "y" * 5000}
    )
    (record,) = logs.records()
    assert "hunter2" not in str(record["error"])
    assert "cifs://***@files/share" in str(record["error"])
    assert len(str(record["error"])) < 1100


@pytest.mark.asyncio
async def test_json_logs_carry_the_review_uid(aiohttp_client) -> None:
    logs = LogCapture()
    client = await _client(aiohttp_client, logger=logs.logger)
    await _answer(client, review(_bad(backing_image()), uid="u-1", dry_run=True))
    await _answer(client, review(backing_image(), uid="u-2"))
    records = {r["uid"]: r for r in logs.records() if r["msg"] == "review"}
    assert records["u-1"]["verdict"] == "denied"
    assert records["u-1"]["rules"] == ["LHB202"]
    assert records["u-1"]["dry_run"] is True
    assert records["u-1"]["level"] == "info"
    assert records["u-2"]["verdict"] == "allowed"
    assert records["u-2"]["level"] == "debug"


@pytest.mark.asyncio
async def test_metrics_count_reviews_by_kind_operation_and_verdict(aiohttp_client) -> None:
    metrics = Metrics()
    client = await _client(aiohttp_client, metrics=metrics)
    await _answer(client, review(_bad(backing_image())))
    await _answer(client, review(_bad(backing_image())))
    await _answer(client, review(None, operation="DELETE", old=backing_image()))
    await _answer(client, review(backup("ghost")))
    text = await (await client.get("/metrics")).text()
    lines = set(text.splitlines())
    assert (
        'longhorn_bi_webhook_reviews_total{kind="BackingImage",operation="CREATE",'
        'verdict="denied"} 2.0'
    ) in lines
    assert (
        'longhorn_bi_webhook_reviews_total{kind="BackingImage",operation="DELETE",'
        'verdict="allowed"} 1.0'
    ) in lines
    assert (
        'longhorn_bi_webhook_reviews_total{kind="BackupBackingImage",operation="CREATE",'
        'verdict="denied"} 1.0'
    ) in lines
    assert "longhorn_bi_webhook_review_duration_seconds_count 4.0" in lines


class _NotReady(StaticFacts):
    def ready(self) -> bool:
        return False

    def ages(self):
        return [("backuptargets", 3.0), ("backingimages", None)]


@pytest.mark.asyncio
async def test_probes_and_cache_metrics(aiohttp_client) -> None:
    metrics = Metrics()
    source = _NotReady(V112, ClusterFacts())
    metrics.track_caches(source.ages)
    client = await aiohttp_client(create_metrics_app(Settings(), source, metrics))
    assert (await client.get("/healthz")).status == 200
    resp = await client.get("/readyz")
    assert resp.status == 503
    assert "backingimages" in await resp.text()
    text = await (await client.get("/metrics")).text()
    assert 'longhorn_bi_webhook_cache_age_seconds{resource="backuptargets"} 3.0' in text
    assert 'longhorn_bi_webhook_cache_synced{resource="backingimages"} 0.0' in text
    assert (await client.post("/validate", json={})).status in {404, 405}


@pytest.mark.asyncio
async def test_policy_enforced_leaves_the_policy_rules_to_it(aiohttp_client) -> None:
    """The chart's mode both: a finding the ValidatingAdmissionPolicy gives is not given
    twice; the rules that need cluster facts still run here."""
    source = StaticFacts(V112, cluster_facts())
    bad_checksum = backing_image()
    bad_checksum["spec"]["checksum"] = "ABC"  # LHB103: in the policy
    alone = await _client(aiohttp_client)
    answer = await _answer(alone, review(bad_checksum))
    assert answer["allowed"] is False and answer["status"]["message"].count("[LHB") == 1
    assert "[LHB103] spec.checksum" in answer["status"]["message"]
    beside = await aiohttp_client(create_app(Settings(policy_enforced=True), source, Metrics()))
    assert (await _answer(beside, review(bad_checksum)))["allowed"] is True
    synced = backup("ghost-0a1b2c3d", userCreated=False, backingImage="ghost")
    answer = await _answer(beside, review(synced))  # LHB402 needs facts: still denied here
    assert answer["allowed"] is False and "[LHB402]" in answer["status"]["message"]
    # LHB201 is in the policy only in part (cel_partial): a backup URL the policy leaves
    # to the webhook (a port in the target) is still judged here.
    restore = backing_image(sourceParameters={"backup-url": "nfs://server:2049/x?backingImage=img"})
    answer = await _answer(beside, review(restore))
    assert answer["allowed"] is False and "[LHB201]" in answer["status"]["message"]
