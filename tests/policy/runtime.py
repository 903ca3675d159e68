"""The generated policy evaluated by a real CEL runtime (cel-expr-python, Google's C++ CEL).

The environment declares what a ValidatingAdmissionPolicy sees (`object`, `oldObject`,
`request`) and loads only the strings extension, which Kubernetes' CEL environment also
has, and the functions of Kubernetes' URL library the policy uses (`isURL`, `url`,
`getHostname`), which the runtime lacks: they are registered here with Kubernetes' semantics
(k8s.io/apiserver pkg/cel/library/urls.go, v1.30.0: Go's url.ParseRequestURI, which
engine/go_url.py follows and tests/test_go_url.py checks against Go). An expression using
anything else fails to compile here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cel_expr_python import cel  # type: ignore[import-untyped]
from cel_expr_python.ext import ext_strings  # type: ignore[import-untyped]

from longhorn_bi.engine.go_url import GoURLError, parse_request_uri
from longhorn_bi.engine.policy import (
    message_expression,
    policy_validations,
    severity,
    validation_expression,
)
from longhorn_bi.engine.rules import Rule, Severity
from longhorn_bi.engine.versions import LonghornVersion


def _is_url(text: str) -> bool:
    """isURL: url.ParseRequestURI succeeds."""
    try:
        parse_request_uri(text)
    except GoURLError:
        return False
    return True


class UnmodelledURL(ValueError):
    """url() was given text where Kubernetes' answer is not modelled here: a test that
    reaches it has found an expression passing url() more than the policy means to."""


def _url(text: str) -> str:
    """url(): Kubernetes parses with ParseRequestURI and then url.Parse, which also splits off
    and checks a fragment and reads a scheme-less '//host' as a host. engine/go_url.py models
    only the first: text where the two could differ is refused here, rather than answered
    wrongly (the policy passes url() only text with an http(s) scheme and no '#')."""
    if not _is_url(text):
        raise ValueError(f"URL parse error during conversion from string: {text!r}")
    if "#" in text or not parse_request_uri(text).scheme:
        raise UnmodelledURL(f"url({text!r}) is beyond what the test runtime models")
    # The value stands for Kubernetes' URL object: its getters parse it again.
    return text


def _hostname(text: str) -> str:
    return parse_request_uri(text).hostname


def _function(name: str, overload: str, result: Any, arg: Any, impl: Any, member: bool) -> Any:
    return cel.FunctionDecl(
        name, [cel.Overload(overload, result, [arg], is_member=member, impl=impl)]
    )


# Kubernetes' kubernetes.URL is an opaque type this runtime cannot hold: here it is a string
# (dyn), and only what the policy calls is declared.
KUBERNETES_URL_FUNCTIONS = (
    ("isURL", "is_url_string", cel.Type.BOOL, cel.Type.STRING, _is_url, False),
    ("url", "string_to_url", cel.Type.DYN, cel.Type.STRING, _url, False),
    ("getHostname", "url_get_hostname", cel.Type.STRING, cel.Type.STRING, _hostname, True),
)


def new_env() -> Any:
    return cel.NewEnv(
        variables={"object": cel.Type.DYN, "oldObject": cel.Type.DYN, "request": cel.Type.DYN},
        extensions=[ext_strings.ExtStrings()],
        functions=[_function(*f) for f in KUBERNETES_URL_FUNCTIONS],
    )


@dataclass(frozen=True)
class Failure:
    rule: str
    severity: Severity
    message: str


class PolicyRuntime:
    """Every validation of one version line, compiled once."""

    def __init__(
        self, version: LonghornVersion, edit: Callable[[str], str] = lambda text: text
    ) -> None:
        """`edit` changes each validation expression before it is compiled (to prove that a
        broken one is caught)."""
        self.env = env = new_env()
        self.compiled: list[tuple[Rule, Severity, Any, Any]] = [
            (
                rule,
                severity(rule, c),
                env.compile(edit(validation_expression(rule, c))),
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
