"""AdmissionReview v1 in, AdmissionResponse out: pure functions, no I/O.

`parse_review` turns a decoded JSON body into a typed `AdmissionRequest` or raises
`MalformedReview` (the caller's bug: HTTP 400). `decide` runs the engine's rule set and says
allow or deny (the user's mistake: HTTP 200 with `allowed: false`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from longhorn_bi.engine.rules import RuleContext, Severity, Violation, evaluate
from longhorn_bi.engine.text_redaction import clip, redact_urls

API_VERSION = "admission.k8s.io/v1"
KIND = "AdmissionReview"
GROUP = "longhorn.io"
CHECKED_KINDS = frozenset({"BackingImage", "BackupBackingImage"})
CHECKED_OPERATIONS = frozenset({"CREATE", "UPDATE"})
OPERATIONS = frozenset({"CREATE", "UPDATE", "DELETE", "CONNECT"})
DENY_PREFIX = "denied by longhorn-bi: "
# Answers land in the API server's audit log and in kubectl's output: bounded. The API
# server itself cuts warnings past 4 KiB in total (k8s.io/apiserver pkg/warning).
MAX_MESSAGE = 4096
MAX_WARNINGS = 10
MAX_WARNING = 300
# Logged strings that come from the request.
MAX_LOGGED = 256


class MalformedReview(ValueError):
    """The body is not an AdmissionReview v1 request we can answer."""


class AdmissionRequest(NamedTuple):
    """The request of one review. A NamedTuple: immutable like a frozen dataclass, and
    made in a third of the time (one per review)."""

    uid: str
    group: str
    version: str
    kind: str
    operation: str
    namespace: str
    name: str
    object: Mapping[str, Any] | None
    old_object: Mapping[str, Any] | None
    dry_run: bool
    username: str  # request.userInfo.username: who asks (Longhorn's service accounts pass)
    # Whether the rule set applies: CREATE/UPDATE of a longhorn.io backing-image kind.
    checked: bool


class AdmissionResponse(NamedTuple):
    """The answer to one review (a NamedTuple for the same reason as the request)."""

    uid: str
    allowed: bool
    message: str = ""
    warnings: tuple[str, ...] = ()
    violations: tuple[Violation, ...] = ()  # what the rules found, for logs

    @property
    def verdict(self) -> str:
        """allowed, warned or denied: the label metrics and logs use."""
        if not self.allowed:
            return "denied"
        return "warned" if self.warnings else "allowed"


def _is_mapping(value: Any) -> bool:
    # The dict test first: JSON gives dicts, and the Mapping ABC check costs several times
    # more.
    return type(value) is dict or isinstance(value, Mapping)


def _text(value: Any, where: str, *, required: bool = False) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise MalformedReview(f"{where} must be a string")
    return value


def _object(value: Any, where: str) -> Mapping[str, Any] | None:
    if value is not None and not _is_mapping(value):
        raise MalformedReview(f"{where} must be an object")
    return value  # type: ignore[no-any-return]


def parse_review(body: Any) -> AdmissionRequest:
    """The request of an AdmissionReview v1, or MalformedReview naming the bad field."""
    # Every review passes through here, so the usual case (dicts and strings, as JSON gives
    # them) is told by a few exact type tests; anything else goes field by field below, to
    # say which one is wrong. Each Python call costs more than these tests together.
    request: Any = body.get("request") if type(body) is dict else None
    kind: Any = request.get("kind") if type(request) is dict else None
    if type(kind) is not dict:
        request, kind = _request_and_kind(body)
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise MalformedReview(
            f"apiVersion/kind must be {API_VERSION}/{KIND}; set admissionReviewVersions: [v1]"
        )
    uid, operation = request.get("uid"), request.get("operation")
    group, version, kind_name = kind.get("group"), kind.get("version"), kind.get("kind")
    namespace, name = request.get("namespace"), request.get("name")
    if not (
        type(uid) is type(operation) is type(group) is type(version) is type(kind_name) is str
        and type(namespace) is type(name) is str
    ):
        uid = _text(uid, "request.uid", required=True)
        operation = _text(operation, "request.operation", required=True)
        group = _text(group, "request.kind.group")
        version = _text(version, "request.kind.version")
        kind_name = _text(kind_name, "request.kind.kind", required=True)
        namespace = _text(namespace, "request.namespace")
        name = _text(name, "request.name")
    if not uid:
        raise MalformedReview("request.uid is empty")
    if operation not in OPERATIONS:
        raise MalformedReview(
            f"request.operation {operation[:40]!r} is not one of {sorted(OPERATIONS)}"
        )
    obj, old = request.get("object"), request.get("oldObject")
    if not ((obj is None or type(obj) is dict) and (old is None or type(old) is dict)):
        obj = _object(obj, "request.object")
        old = _object(old, "request.oldObject")
    user_info = request.get("userInfo")
    username = user_info.get("username") if type(user_info) is dict else None
    if type(username) is not str:
        username = ""  # unknown requester: checked like anyone
    dry_run = request.get("dryRun")
    if dry_run is None:
        dry_run = False
    elif dry_run is not True and dry_run is not False:
        raise MalformedReview("request.dryRun must be a boolean")
    checked = operation in CHECKED_OPERATIONS and group == GROUP and kind_name in CHECKED_KINDS
    if checked:
        if obj is None:
            raise MalformedReview(f"request.object is required for {operation}")
        if operation == "UPDATE" and old is None:
            raise MalformedReview("request.oldObject is required for UPDATE")
    # Positional: keywords cost a third more.
    return AdmissionRequest(
        uid,
        group,
        version,
        kind_name,
        operation,
        namespace,
        name,
        obj,
        old,
        dry_run,
        username,
        checked,
    )


def _request_and_kind(body: Any) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """request and request.kind of a body that is not plain dicts, or the error to report."""
    if not _is_mapping(body):
        raise MalformedReview("the body must be a JSON object (an AdmissionReview)")
    if body.get("apiVersion") != API_VERSION or body.get("kind") != KIND:
        raise MalformedReview(
            f"apiVersion/kind must be {API_VERSION}/{KIND}; set admissionReviewVersions: [v1]"
        )
    request = body.get("request")
    if not _is_mapping(request):
        raise MalformedReview("request is missing or not an object")
    if not _text(request.get("uid"), "request.uid", required=True):
        raise MalformedReview("request.uid is empty")
    kind = request.get("kind")
    if not _is_mapping(kind):
        raise MalformedReview("request.kind must be an object with group, version and kind")
    return request, kind


def with_request_identity(obj: Mapping[str, Any], request: AdmissionRequest) -> Mapping[str, Any]:
    """The object with metadata.namespace (and name) filled from the request when missing.

    The API server sets the namespace of a namespaced object from the request URL, and the
    object in a review may lack it (`kubectl apply -n`); the request carries it.
    """
    metadata = obj.get("metadata")
    if (
        type(metadata) is dict
        and (not request.namespace or "namespace" in metadata)
        and (not request.name or "name" in metadata)
    ):
        return obj  # nothing to fill, so no copy: the usual case
    out = dict(obj)
    metadata = out.get("metadata")
    if metadata is None:
        metadata = {}
    if isinstance(metadata, Mapping):
        metadata = dict(metadata)
        if request.namespace and "namespace" not in metadata:
            metadata["namespace"] = request.namespace
        if request.name and "name" not in metadata:
            metadata["name"] = request.name
        out["metadata"] = metadata
    return out


def _key(v: Violation) -> tuple[str, str]:
    return (v.rule, v.path_str)


def _value(obj: Mapping[str, Any], path: tuple[str | int, ...]) -> Any:
    """The value at `path` in `obj`, or a marker when it is not there."""
    node: Any = obj
    for part in path:
        if isinstance(part, int):
            if not isinstance(node, list) or not 0 <= part < len(node):
                return _MISSING
        elif not _is_mapping(node) or part not in node:
            return _MISSING
        node = node[part]
    return node


_MISSING = object()


def deny_message(errors: list[Violation]) -> str:
    """`denied by longhorn-bi: [LHB202] spec...: ...; [LHB103] ...`: the errors on one line,
    credentials in URLs masked, at most MAX_MESSAGE characters and then how many more."""
    out = DENY_PREFIX
    for shown, v in enumerate(errors):
        part = ("; " if shown else "") + clip(redact_urls(str(v)), MAX_WARNING * 2)
        if len(out) + len(part) > MAX_MESSAGE:
            return f"{out}; ... and {len(errors) - shown} more errors"
        out += part
    return out


def answer_warnings(warnings: list[str]) -> tuple[str, ...]:
    """At most MAX_WARNINGS warnings, each clipped and with credentials masked."""
    shown = [clip(redact_urls(w), MAX_WARNING) for w in warnings[:MAX_WARNINGS]]
    if len(warnings) > MAX_WARNINGS:
        shown[-1] = f"... and {len(warnings) - MAX_WARNINGS + 1} more warnings"
    return tuple(shown)


def decide(
    request: AdmissionRequest,
    ctx: RuleContext,
    exempt: frozenset[str] = frozenset(),
    skip: frozenset[str] = frozenset(),
) -> AdmissionResponse:
    """Allow or deny one request with the rule set.

    Only CREATE and UPDATE of our kinds are checked, never DELETE (that would break
    uninstall) and never a request of a user in `exempt` (Longhorn's own service accounts:
    its manager, its backup-target sync, its upgrade, which rewrites objects). On UPDATE an
    error the stored object already had, at the same path with the same value, is only a
    warning: denying it would block updates (finalizers, labels) of objects made before the
    webhook was installed, or whose facts changed since (a target that became unavailable).
    Findings of the rules in `skip` are left out (a ValidatingAdmissionPolicy enforces them).
    """
    obj = request.object
    if not request.checked or obj is None or request.username in exempt:
        return AdmissionResponse(request.uid, True)
    metadata: Any = obj.get("metadata")
    mapping = type(metadata) is dict or _is_mapping(metadata)
    if mapping and metadata.get("deletionTimestamp") is not None:
        # Being deleted: only finalizers change. No user can set this field: before
        # validating admission the API server clears it on CREATE and holds it to the stored
        # value on UPDATE (k8s.io/apiserver pkg/registry/rest BeforeCreate, BeforeUpdate).
        return AdmissionResponse(request.uid, True)
    new = with_request_identity(obj, request)
    # On UPDATE the rules also see the stored object (LHB109: fields Longhorn keeps as set).
    stored = request.old_object if request.operation == "UPDATE" else None
    violations = evaluate(new, ctx if stored is None else replace(ctx, previous=stored))
    if skip and violations:
        violations = [v for v in violations if v.rule not in skip]
    if not violations:
        return AdmissionResponse(request.uid, True)
    existing: set[tuple[str, str]] = set()
    # The stored object matters only to tell old errors from new ones: none, no need.
    has_errors = any(v.severity is Severity.ERROR for v in violations)
    if has_errors and request.operation == "UPDATE" and request.old_object is not None:
        old = with_request_identity(request.old_object, request)
        existing = {
            _key(v)
            for v in evaluate(old, ctx)
            if v.severity is Severity.ERROR
            # A path-less finding ("stopped after N") stands for the rule's others.
            and (not v.path or _value(old, v.path) == _value(new, v.path))
        }
    errors = [v for v in violations if v.severity is Severity.ERROR and _key(v) not in existing]
    warnings = [str(v) for v in violations if v.severity is Severity.WARNING]
    warnings += [
        f"{v} (already true of the stored object, so not denied)"
        for v in violations
        if v.severity is Severity.ERROR and _key(v) in existing
    ]
    if errors:
        return AdmissionResponse(
            request.uid,
            False,
            deny_message(errors),
            answer_warnings(warnings),
            tuple(violations),
        )
    return AdmissionResponse(request.uid, True, "", answer_warnings(warnings), tuple(violations))


# The answer to nearly every review, an allow without warnings, differs only in its uid.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
_ALLOW_HEAD = f'{{"apiVersion":"{API_VERSION}","kind":"{KIND}","response":{{"uid":'.encode()
_ALLOW_TAIL = b',"allowed":true}}'


def response_json(response: AdmissionResponse) -> bytes:
    """`response_body` as compact UTF-8 JSON; a plain allow without building the dicts."""
    if response.allowed and not response.warnings:
        # encode_basestring is what the encoder calls for a str (ensure_ascii=False).
        return _ALLOW_HEAD + encode_basestring(response.uid).encode() + _ALLOW_TAIL
    return _encode(response_body(response)).encode()


def response_body(response: AdmissionResponse) -> dict[str, Any]:
    """The AdmissionReview v1 answer for `response`."""
    answer: dict[str, Any] = {"uid": response.uid, "allowed": response.allowed}
    if not response.allowed:
        # 403 mirrors what the API server reports for a denied request.
        answer["status"] = {
            "code": 403,
            "reason": "Forbidden",
            "message": response.message,
        }
    if response.warnings:
        answer["warnings"] = list(response.warnings)
    return {"apiVersion": API_VERSION, "kind": KIND, "response": answer}
