"""The webhook's per-review shortcuts answer exactly what the plain path would."""

from __future__ import annotations

import json
import logging

import pytest

from longhorn_bi.engine.rules import Severity, Violation
from longhorn_bi.webhook.app import Reviewer, Settings
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.metrics import LATENCY_BUCKETS, Metrics
from longhorn_bi.webhook.review import AdmissionResponse, response_body, response_json
from tests.webhook.helpers import V112, cluster_facts

UIDS = ["705ab4f5-6393-11e8-b7cc-42010a800002", 'quote " and \\ backslash', "ünïcode ✓", "\n\t"]


@pytest.mark.parametrize("uid", UIDS)
def test_the_allow_template_is_the_compact_json_of_the_response(uid: str) -> None:
    violation = Violation("LHB204", Severity.WARNING, ("spec",), "no checksum")
    for response in (
        AdmissionResponse(uid, True),
        AdmissionResponse(uid, True, warnings=("careful",), violations=(violation,)),
        AdmissionResponse(uid, False, "denied by longhorn-bi: [LHB202] x", ()),
    ):
        expected = json.dumps(response_body(response), separators=(",", ":"), ensure_ascii=False)
        assert response_json(response) == expected.encode()
        assert json.loads(response_json(response))["response"]["uid"] == uid


def test_latency_buckets_count_a_bound_itself_and_above_every_bound() -> None:
    metrics = Metrics()
    for seconds in (LATENCY_BUCKETS[0], LATENCY_BUCKETS[0] * 1.01, 0.0, 99.0):
        metrics.observe_review("BackingImage", "CREATE", "allowed", seconds)
    lines = set(metrics.exposition().decode().splitlines())
    name = "longhorn_bi_webhook_review_duration_seconds"
    assert f'{name}_bucket{{le="0.0005"}} 2.0' in lines  # 0.0 and the bound itself
    assert f'{name}_bucket{{le="0.001"}} 3.0' in lines
    assert f'{name}_bucket{{le="5.0"}} 3.0' in lines
    assert f'{name}_bucket{{le="+Inf"}} 4.0' in lines
    assert f"{name}_count 4.0" in lines
    assert (
        'longhorn_bi_webhook_reviews_total{kind="BackingImage",operation="CREATE",'
        'verdict="allowed"} 4.0'
    ) in lines


def test_the_in_flight_gauge_reads_the_live_count() -> None:
    metrics = Metrics()
    metrics.active += 2
    metrics.active -= 1
    assert "longhorn_bi_webhook_reviews_in_flight 1.0" in metrics.exposition().decode()


def test_the_rule_context_is_made_again_only_when_facts_change() -> None:
    source = StaticFacts(V112, cluster_facts())
    reviewer = Reviewer(Settings(), source, Metrics(), logging.getLogger("test"))
    first = reviewer.context()
    assert first is not None and first.facts is source.fixed and first.version is V112
    assert reviewer.context() is first
    source.fixed = cluster_facts()  # a new facts object, as a cache change makes
    second = reviewer.context()
    assert second is not first and second is not None and second.facts is source.fixed
    assert second.longhorn_namespace == "longhorn-system"
    source.version = None
    assert reviewer.context() is None


def test_reviews_of_other_kinds_share_one_label() -> None:
    metrics = Metrics()
    for kind in ("Pod", "Secret", "BackingImage"):
        metrics.observe_review(kind, "CREATE", "allowed", 0.001)
    text = metrics.exposition().decode()
    assert (
        'longhorn_bi_webhook_reviews_total{kind="other",operation="CREATE",verdict="allowed"} 2.0'
        in text
    )
    assert 'kind="BackingImage",operation="CREATE",verdict="allowed"} 1.0' in text
    assert 'kind="Pod"' not in text
