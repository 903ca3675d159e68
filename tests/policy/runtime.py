"""The generated policy evaluated by a real CEL runtime (cel-expr-python, Google's C++ CEL).

The environment declares what a ValidatingAdmissionPolicy sees (`object`, `oldObject`,
`request`) and loads only the strings extension, which Kubernetes' CEL environment also
has; an expression using anything else fails to compile here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_strings  # type: ignore[import-untyped]

from longhorn_bi.engine.policy import (
    message_expression,
    policy_validations,
    severity,
    validation_expression,
)
from longhorn_bi.engine.rules import Rule, Severity
from longhorn_bi.engine.versions import LonghornVersion


def new_env() -> Any:
    return cel.NewEnv(
        variables={"object": cel.Type.DYN, "oldObject": cel.Type.DYN, "request": cel.Type.DYN},
        extensions=[ext_strings.ExtStrings()],
    )


@dataclass(frozen=True)
class Failure:
    rule: str
    severity: Severity
    message: str


class PolicyRuntime:
    """Every validation of one version line, compiled once."""

    def __init__(self, version: LonghornVersion) -> None:
        self.env = env = new_env()
        self.compiled: list[tuple[Rule, Severity, Any, Any]] = [
            (
                rule,
                severity(rule, c),
                env.compile(validation_expression(rule, c)),
                env.compile(message_expression(rule, c)),
            )
            for rule, c in policy_validations(version)
        ]
        self.rules = frozenset(rule.id for rule, *_ in self.compiled)

    def failures(
        self, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None
    ) -> list[Failure]:
        """The validations `obj` fails (an evaluation error counts as a failure, as under
        failurePolicy Fail)."""
        # One activation per object: the object is converted to CEL values once.
        data = self.env.Activation({"object": obj, "oldObject": old})
        out = []
        for rule, sev, expression, message in self.compiled:
            try:
                passed = expression.eval(data).value()
            except RuntimeError as exc:
                passed = exc
            if type(passed) is not bool:  # an error value (a missing key, a wrong type)
                out.append(Failure(rule.id, sev, f"evaluation error: {passed}"))
            elif not passed:
                text = message.eval(data).value()
                out.append(Failure(rule.id, sev, str(text)))
        return out
