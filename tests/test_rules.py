"""Every rule of the rule set, with cases that break it and cases that satisfy it."""

from __future__ import annotations

import pytest

from longhorn_bi.engine.rules import (
    MAX_FINDINGS_PER_RULE,
    RULES,
    RuleContext,
    Severity,
    evaluate,
)
from tests.rule_cases import CASES
from tests.rule_objects import BACKUP, FACTS, RESTORE, V16, Case, edit, params


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c.rule}-{'bad' if c.fails else 'good'}-{c.title}"
)
def test_rule_case(case: Case) -> None:
    ctx = RuleContext(version=case.version, facts=case.facts, previous=case.previous)
    violations = evaluate(case.obj, ctx)
    found = [v for v in violations if v.rule == case.rule]
    if case.fails:
        assert found, f"{case.rule} did not fire; got {[str(v) for v in violations]}"
        expected = case.severity or next(r.severity for r in RULES if r.id == case.rule)
        assert {v.severity for v in found} == {expected}
        assert all(v.message and v.path for v in found)
    else:
        assert not found, f"{case.rule} fired on a valid object: {[str(v) for v in found]}"


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    for r in RULES:
        kinds = {c.fails for c in CASES if c.rule == r.id}
        assert kinds == {True, False}, (
            f"{r.id} lacks a {'passing' if True in kinds else 'failing'} case"
        )


def test_rule_ids_are_unique_and_documented() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)
    for r in RULES:
        assert r.doc and r.title and r.kinds


def test_user_created_false_gets_no_error_offline_and_no_exemption_with_a_requester() -> None:
    synced = edit(
        BACKUP,
        metadata__name="parrot-0a1b2c3d",
        spec__userCreated=False,
        spec__labels={"not a key": "v"},  # fails the backup: an error from anyone else
    )
    offline = evaluate(synced, RuleContext(facts=FACTS))
    # Offline no requester is known: what Longhorn's sync may have written is not an error.
    assert offline and all(v.severity is Severity.WARNING for v in offline)
    assert any("userCreated: false" in v.message for v in offline)
    # Where the requester is known (the webhook exempts Longhorn by identity first), the
    # field exempts nothing.
    checked = evaluate(synced, RuleContext(facts=FACTS, requester_known=True))
    assert any(v.severity is Severity.ERROR for v in checked)


def test_findings_per_rule_and_object_are_bounded() -> None:
    labels = {f"bad key {i}": "v" for i in range(5000)}
    violations = evaluate(edit(BACKUP, spec__labels=labels), RuleContext(facts=FACTS))
    by_rule = [v for v in violations if v.rule == "LHB004"]
    assert len(by_rule) == MAX_FINDINGS_PER_RULE + 1
    [cut] = [v for v in by_rule if not v.path]
    assert f"stopped after {MAX_FINDINGS_PER_RULE} findings" in cut.message


def test_messages_name_the_field_and_the_fix() -> None:
    [violation] = evaluate(params(RESTORE, concurrent_limit="0"))
    assert violation.path_str == "spec.sourceParameters.concurrent-limit"
    assert '"1" or more' in violation.message


def test_a_wrong_type_is_reported_once() -> None:
    violations = evaluate(params(RESTORE, concurrent_limit=0))
    assert [v.rule for v in violations] == ["LHB005"]
    assert 'quote it: "0"' in violations[0].message


def test_seed_manifests_are_clean_on_1_6() -> None:
    import yaml

    from tests.support import seed_manifests

    for text in seed_manifests():
        assert evaluate(yaml.safe_load(text), RuleContext(version=V16)) == []
