"""Rules every Longhorn object we check shares: identity, namespace, labels, types, fields."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from longhorn_bi.engine.names import (
    DNS_SUBDOMAIN,
    LABEL_NAME,
    LONGHORN_NAME,
    MAX_LONGHORN_NAME,
    MAX_NAME_LENGTH,
    auto_corrected_name,
    is_object_name,
    is_valid_name,
    label_key_problem,
    label_value_problem,
    name_problem,
    object_name_problem,
    plainly_valid_label,
    plainly_valid_label_key,
)
from longhorn_bi.engine.rules.base import (
    BACKING_IMAGE_MANAGER,
    Cel,
    Citation,
    Finding,
    Manifest,
    RuleContext,
    Severity,
    as_mapping,
    crds,
    manager,
    rule,
)
from longhorn_bi.engine.rules.schema import (
    BOOLEAN,
    COMMON_TYPES,
    FIELD_TYPES,
    INTEGER,
    LIST,
    MAP,
    STRING,
    cel_regex,
    cel_shown,
    known_spec_fields,
)

API_VERSION = "longhorn.io/v1beta2"
V1BETA1 = "longhorn.io/v1beta1"
ALL_KINDS = {"BackingImage", "BackupBackingImage", "BackupTarget", "Setting"}
IMAGE_KINDS = {"BackingImage", "BackupBackingImage"}
# The kinds whose CRD still serves v1beta1 (converted to v1beta2) while the version does.
V1BETA1_KINDS = frozenset({"BackingImage", "BackupTarget", "Setting"})


@rule(
    "LHB001",
    "api-version",
    Severity.ERROR,
    ALL_KINDS,
    "apiVersion is longhorn.io/v1beta2",
    source=(crds("1.6-1.12"),),
    not_in_policy="the policy matches v1beta2 with matchPolicy Equivalent: the API server converts v1beta1 first",
)
def check_api_version(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """The API server serves these kinds as longhorn.io/v1beta2; another apiVersion is
    refused. BackingImage, BackupTarget and Setting are also served as v1beta1 up to Longhorn
    1.8 (converted to v1beta2), which is a warning there."""
    value = m.obj.get("apiVersion")
    if value == API_VERSION:
        return
    if value == V1BETA1 and m.kind in V1BETA1_KINDS and ctx.version.serves_v1beta1:
        yield Finding(
            ("apiVersion",),
            f"{V1BETA1} is deprecated; Longhorn {ctx.version} still serves it and converts the "
            f"object to v1beta2 (1.9 stops serving it); set apiVersion: {API_VERSION}",
            Severity.WARNING,
        )
        return
    got = "missing" if value is None else repr(value)
    yield Finding(("apiVersion",), f"apiVersion is {got}; set it to {API_VERSION}")


@rule(
    "LHB002",
    "longhorn-namespace",
    Severity.ERROR,
    ALL_KINDS,
    "object is in the Longhorn namespace",
    source=(
        manager("controller/backing_image_controller.go", "1.6-1.12"),
        manager("controller/backup_backing_image_controller.go", "1.6-1.12"),
        manager("controller/backup_target_controller.go", "1.6-1.12"),
    ),
    not_in_policy="the bindings match the Longhorn namespace only, as the webhook does",
)
def check_namespace(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn's controllers skip objects outside their own namespace: an object elsewhere
    is never acted on. A missing namespace is a warning, since `kubectl apply -n` may supply
    it."""
    namespace = m.namespace
    if namespace is None and "namespace" not in m.metadata:
        yield Finding(
            ("metadata",),
            f"metadata.namespace is not set; set it to {ctx.longhorn_namespace} so that the object "
            "does not land in whatever namespace is current",
            Severity.WARNING,
        )
    elif namespace is not None and namespace != ctx.longhorn_namespace:
        yield Finding(
            ("metadata", "namespace"),
            f"namespace is {namespace!r} but Longhorn only acts on objects in "
            f"{ctx.longhorn_namespace!r}; move the object there",
        )


_NAME = "object.metadata.name"
# CEL: the name Longhorn's mutator gives a BackingImage (names.auto_corrected_name), as far as
# its validity goes: past 40 characters the cut name ends in '-' and 8 hex digits, and any
# alphanumeric stands in for those (CEL has no SHA-512). Python's lower() and CEL's
# lowerAscii() differ on non-ASCII letters, which no valid name has.
_STORED = (
    f"(size({_NAME}) <= {MAX_LONGHORN_NAME} ? {_NAME}.lowerAscii() : "
    f"{_NAME}.lowerAscii().substring(0, {MAX_LONGHORN_NAME - 9}) + '-a')"
)
_STORED_OK = (
    f"({_STORED}.matches({cel_regex(LONGHORN_NAME)}) && "
    f"{_STORED}.matches({cel_regex(DNS_SUBDOMAIN)}))"
)


@rule(
    "LHB003",
    "object-name",
    Severity.ERROR,
    IMAGE_KINDS,
    "metadata.name is a name Longhorn and the API server accept",
    source=(
        manager("webhook/resources/backingimage/mutator.go", "1.6-1.12"),
        manager("webhook/resources/backingimage/validator.go", "1.6-1.12"),
        manager("util/util.go", "1.6-1.12"),
        crds("1.6-1.12"),
    ),
    cel=(
        Cel(
            "has(object.metadata.name)",
            "'metadata.name is missing; give the object a name'",
            path=("metadata",),
        ),
        Cel(
            f"!has({_NAME}) || object.kind != 'BackingImage' || {_STORED_OK}",
            f"'the name ' + {_NAME} + ' is not one Longhorn and the API server accept (Longhorn "
            "lower-cases it and cuts it to 40 characters): lower-case letters, digits, - and ., "
            "starting and ending with a letter or digit'",
            path=("metadata", "name"),
        ),
        Cel(
            f"!has({_NAME}) || object.kind == 'BackingImage' || ({_NAME} != '' && "
            f"size({_NAME}) <= {MAX_NAME_LENGTH} && {_NAME}.matches({cel_regex(DNS_SUBDOMAIN)}))",
            f"'the name ' + {_NAME} + ' is no Kubernetes object name: lower-case letters, "
            "digits, - and ., starting and ending with a letter or digit'",
            path=("metadata", "name"),
        ),
        Cel(
            f"!has({_NAME}) || object.kind != 'BackingImage' || !{_STORED_OK} || "
            f"(size({_NAME}) <= {MAX_LONGHORN_NAME} && {_NAME}.lowerAscii() == {_NAME})",
            f"'Longhorn renames ' + {_NAME} + ' (names are lower-cased and cut to "
            f"{MAX_LONGHORN_NAME} characters); use that name so that the object matches the "
            "manifest'",
            path=("metadata", "name"),
            severity=Severity.WARNING,
        ),
    ),
)
def check_name(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """The API server refuses a custom resource whose name is no DNS-1123 subdomain (no `_`,
    no upper case), after mutating admission. Longhorn's mutator first renames a
    BackingImage: lower-cased, and cut to 40 characters plus a hash when longer; its
    validator then wants `^[a-z0-9][a-z0-9_.-]+$`. A rename is accepted, but the object then
    differs from the manifest (GitOps drift), so a warning. Longhorn checks no
    BackupBackingImage name: only the API server's rule applies to those."""
    name = m.metadata.get("name")
    if name is None:
        yield Finding(("metadata",), "metadata.name is missing; give the object a name")
        return
    if not isinstance(name, str) or (
        is_valid_name(name) and is_object_name(name) and len(name) <= MAX_LONGHORN_NAME
    ):
        return
    if m.kind != "BackingImage":
        problem = object_name_problem(name)
        if problem:
            yield Finding(("metadata", "name"), f"the name {problem}")
        return
    stored = auto_corrected_name(name)
    problem = name_problem(stored) or object_name_problem(stored)
    renamed = f" (Longhorn renames it {stored!r})" if stored != name else ""
    if problem:
        yield Finding(("metadata", "name"), f"the name {problem}{renamed}")
    elif renamed:
        yield Finding(
            ("metadata", "name"),
            f"Longhorn renames {name!r} to {stored!r} (names are lower-cased and cut to "
            f"{MAX_LONGHORN_NAME} characters); use that name so that the object matches the "
            "manifest",
            Severity.WARNING,
        )


def _label_findings(labels: Mapping[Any, Any], base: tuple[str, ...]) -> Iterator[Finding]:
    # A generator: `evaluate` stops reading it after a few findings, so a map of 300,000
    # bad keys costs no more than a few.
    for key, value in labels.items():
        if type(key) is str and plainly_valid_label(key, value):
            continue  # one match instead of four: most labels are fine
        if not isinstance(key, str):
            yield Finding(base, f"label key {key!r} is not a string; quote it")
            continue
        problem = label_key_problem(key)
        if problem:
            yield Finding((*base, key), problem)
        if isinstance(value, str):
            problem = label_value_problem(value)
            if problem:
                yield Finding((*base, key), problem)


def _backup_label_findings(labels: Mapping[Any, Any]) -> Iterator[Finding]:
    # The backing image manager's check: a qualified-name key and any non-empty value.
    for key, value in labels.items():
        if type(key) is str and value != "" and plainly_valid_label_key(key):
            continue  # most labels are fine: one memoised match
        if not isinstance(key, str):
            yield Finding(("spec", "labels"), f"label key {key!r} is not a string; quote it")
            continue
        problem = label_key_problem(key)
        if problem:
            yield Finding(("spec", "labels", key), f"{problem}; the backup would fail")
        if value == "":
            yield Finding(
                ("spec", "labels", key),
                f"label {key!r} has an empty value, which fails the backup; give it a value",
            )


# names.LABEL_NAME with its {0,61} as a size test: a counted repetition makes RE2 build a
# large automaton, which a runtime that compiles the pattern per evaluation pays each time.
_CEL_LABEL_NAME = "'^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$'"
assert LABEL_NAME.pattern == r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)\Z"


def _label_key_ok(key: str) -> str:
    """CEL: `key` is a label key (names.label_key_problem finds nothing)."""
    slash = f"{key}.lastIndexOf('/')"
    return (
        f"(({slash} < 0 || ({slash} >= 1 && {slash} <= {MAX_NAME_LENGTH} && "
        f"{key}.substring(0, {slash}).matches({cel_regex(DNS_SUBDOMAIN)}))) && "
        f"size({key}.substring({slash} + 1)) <= 63 && "
        f"{key}.substring({slash} + 1).matches({_CEL_LABEL_NAME}))"
    )


_BACKUP_LABEL_OK = f"{_label_key_ok('k')} && object.spec.labels[k] != ''"


# A backup with more labels is not judged by the policy (the webhook judges it): a loop over
# them all could pass the per-call cost limit (docs/policy.md, "Cost limits").
MAX_CEL_LABELS = 256


def _labels_pass(parent: str, label_ok: str) -> str:
    """CEL: every label of `<parent>.labels` is fine, or (UPDATE) the stored object has it
    with the same value: the webhook excuses an error per label, at its own path."""
    new, old = f"object.{parent}.labels", f"oldObject.{parent}.labels"
    return (
        f"!has(object.{parent}) || !has({new}) || {new}.all(k, ({label_ok}) || "
        f"(oldObject != null && has(oldObject.{parent}) && has({old}) && k in {old} && "
        f"{old}[k] == {new}[k]))"
    )


@rule(
    "LHB004",
    "labels",
    Severity.ERROR,
    ALL_KINDS,
    "label keys and values are valid",
    source=(
        Citation(BACKING_IMAGE_MANAGER, "pkg/backup/backup.go", "1.6-1.12"),
        manager("vendor/github.com/longhorn/longhorn-engine/pkg/util/util.go", "1.6-1.12"),
    ),
    # metadata.labels have no CEL form: the API server refuses invalid ones before any policy
    # runs (k8s.io/apiserver pkg/registry/rest/create.go and update.go, BeforeCreate and
    # BeforeUpdate, run before the validating admission in registry/store.go; v1.30.0), and a
    # loop over the hundreds of thousands of labels a request can hold passes the per-call
    # cost limit, which would deny a valid object.
    cel=(
        Cel(
            "object.kind != 'BackupBackingImage' || !has(object.spec) || !has(object.spec.labels)"
            f" || size(object.spec.labels) > {MAX_CEL_LABELS} || "
            + _labels_pass("spec", _BACKUP_LABEL_OK),
            "'backup labels ' + object.spec.labels.filter(k, !("
            f"{_BACKUP_LABEL_OK})).map(k, {cel_shown('k')}).join(', ') + ' have an invalid key "
            "or an empty value, which fails the backup'",
            path=("spec", "labels"),
            introduced_only=False,  # per label, in the expression
        ),
    ),
    cel_partial=(
        f"backups with more than {MAX_CEL_LABELS} spec.labels, and metadata.labels (the API "
        "server's)"
    ),
)
def check_labels(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Object labels follow Kubernetes label syntax (the API server refuses others). A
    backup's spec.labels are checked by the backing image manager when the backup runs: the
    key is a qualified name (label key syntax) and the value any non-empty text; anything
    else fails the backup. Findings are yielded, so that evaluate's per-rule cut bounds the
    work on a hostile object."""
    labels = m.metadata.get("labels")
    if labels:  # most objects have a few plain labels, or none
        labels = labels if type(labels) is dict else as_mapping(labels)
        yield from _label_findings(labels, ("metadata", "labels"))
    if m.kind == "BackupBackingImage":
        yield from _backup_label_findings(as_mapping(m.spec.get("labels")))


_TYPE_NAMES = {
    STRING: "a string",
    BOOLEAN: "a boolean",
    INTEGER: "an integer",
    MAP: "a map",
    LIST: "a list",
}


def _yaml_type(value: Any) -> str:
    if type(value) is str:  # the common case first, without the ABC checks below
        return STRING
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int):
        return INTEGER
    if isinstance(value, str):
        return STRING
    if isinstance(value, Mapping):
        return MAP
    if isinstance(value, list):
        return LIST
    return "null" if value is None else type(value).__name__


def _type_fix(expected: str, value: Any) -> str:
    if expected == STRING and isinstance(value, bool | int | float):
        shown = str(value).lower() if isinstance(value, bool) else str(value)
        return f'quote it: "{shown}"'
    if expected == BOOLEAN and isinstance(value, str) and value.lower() in {"true", "false"}:
        return f"write {value.lower()} without quotes"
    if expected == INTEGER and isinstance(value, str) and value.strip().isdigit():
        return f"write {value.strip()} without quotes"
    return f"make it {_TYPE_NAMES.get(expected, expected)}"


# The Python type that certainly has each YAML type (bool is not int here: type() is exact).
_EXACT: dict[str, type] = {STRING: str, BOOLEAN: bool, INTEGER: int, MAP: dict, LIST: list}


@dataclass(frozen=True, slots=True)
class _TypeNode:
    """One level of a kind's field-type table as a tree: the type expected here (if any),
    the named children, and the node for every other key or item ("*")."""

    expected: str | None
    children: Mapping[str, _TypeNode]
    other: _TypeNode | None
    exact: type | None  # a value of exactly this type is right without a closer look
    leaf: bool  # nothing below is typed
    flat: type | None  # a map whose every value should be exactly this leaf type


def _type_tree(table: Mapping[tuple[str, ...], str], prefix: tuple[str, ...]) -> _TypeNode:
    names = {
        key[len(prefix)] for key in table if len(key) > len(prefix) and key[: len(prefix)] == prefix
    }
    children = {name: _type_tree(table, (*prefix, name)) for name in names - {"*"}}
    other = _type_tree(table, (*prefix, "*")) if "*" in names else None
    expected = table.get(prefix)
    exact = _EXACT.get(expected) if expected is not None else None
    flat = (
        other.exact
        if expected == MAP and not children and other is not None and other.leaf
        else None
    )
    return _TypeNode(expected, children, other, exact, not children and other is None, flat)


def _walk_types(
    value: Any, path: tuple[str | int, ...], node: _TypeNode, out: list[Finding]
) -> None:
    # A tree walk that appends: only fields with a type below them are visited, and leaves
    # of the right type are passed over without a call (the webhook runs this per review).
    expected = node.expected
    if expected is not None and value is not None and type(value) is not node.exact:
        actual = _yaml_type(value)
        if actual != expected:
            shown = f" ({value!r})" if actual not in {MAP, LIST} else ""
            where = ".".join(str(p) for p in path)
            out.append(
                Finding(
                    path,
                    f"{where} is {_TYPE_NAMES.get(actual, actual)}{shown} but Longhorn's schema "
                    f"wants {_TYPE_NAMES[expected]}; {_type_fix(expected, value)}",
                )
            )
            return
    if type(value) is dict or isinstance(value, Mapping):
        children, other = node.children, node.other
        for key, child in value.items():
            if not isinstance(key, str):
                continue
            below = children.get(key, other)
            if below is None:
                continue
            # Nothing to report, so no call: a right-typed (or null) leaf, or a map of
            # right-typed leaves (labels, annotations, sourceParameters).
            if below.leaf:
                if child is None or type(child) is below.exact:
                    continue
            elif below.flat is not None and type(child) is dict:
                flat = below.flat
                for item in child.values():
                    if item is not None and type(item) is not flat:
                        break
                else:
                    continue
            _walk_types(child, (*path, key), below, out)
    elif isinstance(value, list) and node.other is not None:
        other = node.other
        for index, child in enumerate(value):
            if not (other.leaf and (child is None or type(child) is other.exact)):
                _walk_types(child, (*path, index), other, out)


def _type_root(kind: str) -> _TypeNode:
    """The field-type tree of `kind`, built once per kind."""
    root = _TYPE_TREES.get(kind)
    if root is None:
        root = _TYPE_TREES[kind] = _type_tree({**COMMON_TYPES, **FIELD_TYPES.get(kind, {})}, ())
    return root


_TYPE_TREES: dict[str, _TypeNode] = {}


@rule(
    "LHB005",
    "field-types",
    Severity.ERROR,
    ALL_KINDS,
    "fields have the types of the CRD schema",
    source=(crds("1.6-1.12"),),
    not_in_policy="the CRD schema refuses wrong types before admission",
)
def check_field_types(m: Manifest, ctx: RuleContext) -> list[Finding]:
    """The API server rejects a wrong YAML type (`concurrent-limit: 2` where the CRD wants
    the string "2", `userCreated: "true"` where it wants a boolean) with a terse schema error."""
    found: list[Finding] = []
    _walk_types(m.obj, (), _TYPE_TREES.get(m.kind) or _type_root(m.kind), found)
    return found


_SPEC_FIELD_RULES = {"backingImage", "backupTargetName"}  # reported by their own rules


@rule(
    "LHB006",
    "unknown-fields",
    Severity.WARNING,
    IMAGE_KINDS,
    "spec has only fields the CRD knows",
    source=(crds("1.6-1.12"),),
    not_in_policy="the API server prunes unknown fields before admission",
)
def check_unknown_fields(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """The API server silently prunes spec fields its CRD does not know, so a misspelt
    field (`sourcetype`) or one from a newer Longhorn simply vanishes."""
    known = known_spec_fields(m.kind, ctx.version)
    if known is None:
        return
    for key in m.spec:
        if key not in known and not (m.kind == "BackupBackingImage" and key in _SPEC_FIELD_RULES):
            close = [k for k in known if k.lower() == str(key).lower()]
            hint = f"; did you mean {close[0]!r}?" if close else ""
            yield Finding(
                ("spec", key),
                f"spec.{key} is not a field of {m.kind} in Longhorn {ctx.version}: the API server "
                f"drops it{hint}",
            )
