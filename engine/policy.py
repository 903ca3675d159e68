"""The rule set as ValidatingAdmissionPolicies: admission without the webhook (Kubernetes 1.30+).

Every object-only rule carries its CEL form beside its Python form (`rule(..., cel=...)`);
this module only assembles them, per Longhorn version line, into two policies and their
bindings: errors (validationActions Deny) and warnings (Warn). Rules that need cluster facts
have no CEL form and stay with the webhook.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from longhorn_bi.engine.rules import RULES, Rule
from longhorn_bi.engine.rules.base import (
    LONGHORN_NAMESPACE,
    Cel,
    Path,
    Severity,
    format_path,
    in_versions,
)
from longhorn_bi.engine.versions import SUPPORTED_VERSIONS, LonghornVersion

API_VERSION = "admissionregistration.k8s.io/v1"
# Longhorn's manager, backup-target sync and upgrade jobs (longhorn/longhorn chart,
# templates/daemonset-sa.yaml, preupgrade-job.yaml; 1.6-1.12), as the webhook exempts them.
EXEMPT_ACCOUNTS = ("longhorn-service-account",)
RESOURCES = ("backingimages", "backupbackingimages")
_OBJECT = re.compile(r"\bobject\b")


def exempt_usernames(accounts: tuple[str, ...], namespace: str) -> tuple[str, ...]:
    """Full user names (system:serviceaccount:NS:NAME) as given; a bare name is a service
    account of `namespace`. The webhook and the policy exempt the same requesters."""
    return tuple(a if ":" in a else f"system:serviceaccount:{namespace}:{a}" for a in accounts)


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _guard(rule: Rule) -> str:
    """What `evaluate` decides before the rule runs: its kinds and source types."""
    parts = ["object.kind in [" + ", ".join(map(_quote, sorted(rule.kinds))) + "]"]
    if rule.source_types is not None:
        sources = ", ".join(map(_quote, sorted(rule.source_types)))
        parts.append(
            f"has(object.spec) && has(object.spec.sourceType) && object.spec.sourceType in [{sources}]"
        )
    return " && ".join(parts)


def validation_expression(rule: Rule, cel: Cel) -> str:
    """The validation as the policy carries it: true when the object passes."""
    passes = f"!({_guard(rule)}) || ({cel.expression})"
    if not cel.introduced_only or severity(rule, cel) is not Severity.ERROR:
        return passes
    # On UPDATE an error the stored object already had, with the same value at the path, is
    # not the change's: let it pass (the webhook warns of it instead). Warnings are always
    # given, as the webhook gives them.
    stored = _OBJECT.sub("oldObject", passes)
    return f"({passes}) || (oldObject != null && !({stored}) && {_unchanged(cel.path)})"


_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _unchanged(path: Path) -> str:
    """CEL: the value at `path` is the same (or as absent) in oldObject and object."""
    levels = []
    old, new = "oldObject", "object"
    for key in path:
        if isinstance(key, str) and _IDENTIFIER.match(key):
            levels.append((f"has({old}.{key})", f"has({new}.{key})"))
            old, new = f"{old}.{key}", f"{new}.{key}"
        else:
            levels.append((f"{_quote(str(key))} in {old}", f"{_quote(str(key))} in {new}"))
            old, new = f"{old}[{_quote(str(key))}]", f"{new}[{_quote(str(key))}]"
    same = f"{old} == {new}"
    for in_old, in_new in reversed(levels):
        same = f"({in_old}) == ({in_new}) && (!({in_new}) || {same})"
    return f"({same})"


def message_expression(rule: Rule, cel: Cel) -> str:
    return f"{_quote(f'[{rule.id}] {format_path(cel.path)}: ')} + ({cel.message})"


def severity(rule: Rule, cel: Cel) -> Severity:
    return cel.severity or rule.severity


def policy_validations(version: LonghornVersion) -> list[tuple[Rule, Cel]]:
    """The (rule, validation) pairs that hold for the version line, in catalogue order."""
    return [(r, c) for r in RULES for c in r.cel if in_versions(version, c.versions)]


@cache
def enforced_rules(version: LonghornVersion) -> frozenset[str]:
    """The rules the policy of `version` enforces: a webhook beside it (the chart's mode
    both) leaves them to the policy, so that no finding is reported twice. A rule whose CEL
    form covers only part of it (`cel_partial`) stays with the webhook too: what the policy
    leaves out would otherwise be judged by neither."""
    return frozenset(r.id for r, _ in policy_validations(version) if not r.cel_partial)


def _validation(rule: Rule, cel: Cel) -> dict[str, Any]:
    return {
        "expression": validation_expression(rule, cel),
        "messageExpression": message_expression(rule, cel),
        # Shown when the messageExpression cannot be evaluated.
        "message": f"[{rule.id}] {format_path(cel.path)}: {rule.title}",
        "reason": "Invalid",
    }


def chart_validations() -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{version line: {"errors": validations, "warnings": validations}}: what the chart's
    policy template reads (charts/longhorn-bi-webhook/files/policy-validations.json, written
    by `make chart-policy`; tests/policy checks it is current)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for line in SUPPORTED_VERSIONS:
        pairs = policy_validations(LonghornVersion.parse(line))
        out[line] = {
            f"{sev.value}s": [_validation(r, c) for r, c in pairs if severity(r, c) is sev]
            for sev in (Severity.ERROR, Severity.WARNING)
        }
    return out


def policy_documents(
    version: LonghornVersion,
    namespace: str = LONGHORN_NAMESPACE,
    exempt_accounts: tuple[str, ...] = EXEMPT_ACCOUNTS,
    name: str = "longhorn-bi",
) -> list[dict[str, Any]]:
    """Two ValidatingAdmissionPolicies (errors, warnings) and their bindings."""
    users = ", ".join(map(_quote, exempt_usernames(exempt_accounts, namespace)))
    labels = {
        "app.kubernetes.io/name": "longhorn-bi",
        "longhorn-bi.io/longhorn-version": f"{version.major}.{version.minor}",
    }
    documents: list[dict[str, Any]] = []
    for severity_, action in ((Severity.ERROR, "Deny"), (Severity.WARNING, "Warn")):
        validations = [
            _validation(r, c) for r, c in policy_validations(version) if severity(r, c) is severity_
        ]
        policy_name = f"{name}-{namespace}-{severity_.value}s"
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": policy_name, "labels": labels},
                "spec": {
                    # A validation that cannot be evaluated denies (errors) or is ignored
                    # (warnings), as the webhook's failurePolicy does by default.
                    "failurePolicy": "Fail" if action == "Deny" else "Ignore",
                    "matchConstraints": {
                        # Longhorn still serves v1beta1 of some kinds up to 1.8: Equivalent
                        # has the API server convert those to v1beta2 first.
                        "matchPolicy": "Equivalent",
                        # Longhorn only acts on objects in its own namespace.
                        "namespaceSelector": {
                            "matchLabels": {"kubernetes.io/metadata.name": namespace}
                        },
                        "resourceRules": [
                            {
                                "apiGroups": ["longhorn.io"],
                                "apiVersions": ["v1beta2"],
                                "operations": ["CREATE", "UPDATE"],
                                "resources": list(RESOURCES),
                                "scope": "Namespaced",
                            }
                        ],
                    },
                    "matchConditions": [
                        # Longhorn's own requests (its sync writes userCreated: false objects,
                        # its upgrade rewrites them) are never judged, as in the webhook.
                        {
                            "name": "not-longhorn",
                            "expression": f"!(request.userInfo.username in [{users}])",
                        },
                        # Being deleted: only finalizers change (the webhook lets it pass too).
                        {
                            "name": "not-deleting",
                            "expression": "!has(object.metadata.deletionTimestamp)",
                        },
                    ],
                    "validations": validations,
                },
            }
        )
        documents.append(
            {
                "apiVersion": API_VERSION,
                "kind": "ValidatingAdmissionPolicyBinding",
                "metadata": {"name": policy_name, "labels": labels},
                "spec": {"policyName": policy_name, "validationActions": [action]},
            }
        )
    return documents


if __name__ == "__main__":  # make chart-policy
    import json
    import sys

    json.dump(chart_validations(), sys.stdout, indent=1)
    sys.stdout.write("\n")
