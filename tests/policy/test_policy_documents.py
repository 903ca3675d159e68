"""`kubectl longhorn-bi policy`: what it prints, and which rules the policy holds."""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest
import yaml

from longhorn_bi.engine.policy import chart_validations, policy_validations
from longhorn_bi.engine.rules import RULES
from longhorn_bi.engine.versions import SUPPORTED_VERSIONS, LonghornVersion
from tests.policy.runtime import new_env
from tests.support import run_cli

# Object-only rules whose CEL form is not written yet (issue 12 follow-up): the list only
# shrinks; a new rule must come with a CEL form or say why it has none.
NOT_YET_IN_CEL: set[str] = set()


def test_every_rule_has_a_cel_form_or_says_why_not() -> None:
    for rule in RULES:
        reasons = [bool(rule.cel), rule.needs_facts, bool(rule.not_in_policy)]
        assert sum(reasons) <= 1, rule.id
        assert sum(reasons) == 1 or rule.id in NOT_YET_IN_CEL, rule.id
    assert not NOT_YET_IN_CEL & {r.id for r in RULES if r.cel or r.needs_facts}


def _reads_facts(function: Any, seen: frozenset[str] = frozenset()) -> bool:
    """Whether `function`, or a function of its module it calls, reads ctx.facts."""
    source = inspect.getsource(function)
    if "ctx.facts" in source:
        return True
    module = inspect.getmodule(function)
    return any(
        _reads_facts(helper, seen | {name})
        for name, helper in vars(module).items()
        if inspect.isfunction(helper) and name not in seen and f"{name}(" in source
    )


def test_rules_that_read_cluster_facts_say_so() -> None:
    for rule in RULES:
        assert rule.needs_facts == _reads_facts(rule.check, frozenset({rule.check.__name__}))


# Kubernetes' CEL environment at 1.30: standard CEL, the strings extension and the URL
# library (docs/policy.md).
KUBERNETES_CEL = {"has", "size", "string", "matches", "all", "filter", "map", "endsWith"}
KUBERNETES_CEL |= {"startsWith", "contains"}
KUBERNETES_CEL |= {"trim", "lowerAscii", "substring", "indexOf", "lastIndexOf", "join", "split"}
KUBERNETES_CEL |= {"isURL", "url", "getHostname"}


def test_only_functions_of_kubernetes_cel_are_used() -> None:
    used: set[str] = set()
    for line in chart_validations().values():
        for validation in (*line["errors"], *line["warnings"]):
            for text in (validation["expression"], validation["messageExpression"]):
                # A function or macro call: a name before '(' outside string literals.
                used |= set(
                    re.findall(r"([A-Za-z_]\w*)\(", re.sub(r"'(?:[^'\\]|\\.)*'", "''", text))
                )
    assert used <= KUBERNETES_CEL, used - KUBERNETES_CEL


def _documents(*args: str) -> list[dict[str, Any]]:
    result = run_cli("policy", *args)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout)]


def test_policy_prints_two_policies_and_their_bindings() -> None:
    docs = _documents("--longhorn-version", "1.8", "-n", "storage")
    kinds = [(d["kind"], d["metadata"]["name"]) for d in docs]
    assert kinds == [
        ("ValidatingAdmissionPolicy", "longhorn-bi-storage-errors"),
        ("ValidatingAdmissionPolicyBinding", "longhorn-bi-storage-errors"),
        ("ValidatingAdmissionPolicy", "longhorn-bi-storage-warnings"),
        ("ValidatingAdmissionPolicyBinding", "longhorn-bi-storage-warnings"),
    ]
    assert {d["apiVersion"] for d in docs} == {"admissionregistration.k8s.io/v1"}
    errors, deny, warnings, warn = docs
    assert deny["spec"] == {
        "policyName": "longhorn-bi-storage-errors",
        "validationActions": ["Deny"],
    }
    assert warn["spec"]["validationActions"] == ["Warn"]
    match = errors["spec"]["matchConstraints"]
    assert match["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": "storage"}
    assert match["resourceRules"][0]["resources"] == ["backingimages", "backupbackingimages"]
    assert match["resourceRules"][0]["operations"] == ["CREATE", "UPDATE"]
    conditions = {c["name"]: c["expression"] for c in errors["spec"]["matchConditions"]}
    assert "'system:serviceaccount:storage:longhorn-service-account'" in conditions["not-longhorn"]
    # Errors in the Deny policy, warnings in the Warn one, each message naming its rule.
    for policy, severity in ((errors, "error"), (warnings, "warning")):
        for validation in policy["spec"]["validations"]:
            rule_id = validation["message"].split("]")[0].lstrip("[")
            assert validation["messageExpression"].startswith(f"'[{rule_id}] ")
            rule = next(r for r in RULES if r.id == rule_id)
            assert any((c.severity or rule.severity) == severity for c in rule.cel)


def test_matchconditions_compile_and_exempt_longhorn() -> None:
    docs = _documents()
    env = new_env()
    longhorn = {
        "userInfo": {"username": "system:serviceaccount:longhorn-system:longhorn-service-account"}
    }
    admin = {"userInfo": {"username": "kubernetes-admin"}}
    obj = {"metadata": {"name": "x"}}
    for condition in docs[0]["spec"]["matchConditions"]:
        expression = env.compile(condition["expression"])
        if condition["name"] == "not-longhorn":
            assert expression.eval(data={"request": longhorn, "object": obj}).value() is False
        assert expression.eval(data={"request": admin, "object": obj}).value() is True
    deleting = {"metadata": {"name": "x", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    condition = docs[0]["spec"]["matchConditions"][1]
    assert env.compile(condition["expression"]).eval(data={"object": deleting}).value() is False


@pytest.mark.parametrize("line", SUPPORTED_VERSIONS)
def test_validations_follow_the_version_line(line: str) -> None:
    docs = _documents("--longhorn-version", line, "-o", "json")
    (listed,) = docs
    items = listed["items"]
    printed = [
        v
        for d in items
        if d["kind"] == "ValidatingAdmissionPolicy"
        for v in d["spec"]["validations"]
    ]
    assert len(printed) == len(policy_validations(LonghornVersion.parse(line)))
    has_data_engine = any("[LHB108]" in v["message"] for v in printed)
    assert has_data_engine == (LonghornVersion.parse(line) >= LonghornVersion.parse("1.8"))


def test_bad_namespace_is_a_usage_error_naming_the_option() -> None:
    result = run_cli("policy", "-n", "Longhorn_System")
    assert result.returncode == 2
    assert "-n/--namespace" in result.stderr and result.stdout == ""
