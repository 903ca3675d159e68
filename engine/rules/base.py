"""The shape of a rule, the violations it yields, and the context it runs in.

A rule is a pure function of (object, context) where the context carries the Longhorn
version, the Longhorn namespace and the cluster facts. It yields (or returns a list of)
`Finding`s (a field path and a message); the registry stamps them with the rule's id and
severity.

The principle every rule follows: a finding is an error (a denial in the webhook, exit 1 in
`validate`) only where Longhorn itself rejects the object (its validating or mutating
webhook, the CRD schema) or would certainly fail or hang on it. What Longhorn tolerates, what
depends on transient cluster state and what is only advice is a warning. Each rule cites the
Longhorn files and version lines it encodes (`rule(..., source=...)`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from longhorn_bi.engine.backup_url import BackingImageBackupURL, parse_backup_url
from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.facts import ClusterFacts
from longhorn_bi.engine.versions import DEFAULT_VERSION, LonghornVersion

LONGHORN_NAMESPACE = "longhorn-system"
Path = tuple[str | int, ...]


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


def format_path(path: Path) -> str:
    """`spec.sourceParameters.concurrent-limit`; keys with '.' or '/' in brackets."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "." in part or "/" in part or not part:
            out += f'["{part}"]'
        else:
            out += f".{part}" if out else part
    return out


@dataclass(frozen=True, slots=True)
class Violation:
    rule: str
    severity: Severity
    path: Path
    message: str

    @property
    def path_str(self) -> str:
        return format_path(self.path)

    def __str__(self) -> str:
        return f"[{self.rule}] {self.path_str}: {self.message}"


@dataclass(frozen=True, slots=True)
class Finding:
    """What a check yields; `severity` overrides the rule's default when set."""

    path: Path
    message: str
    severity: Severity | None = None


@dataclass(frozen=True)
class RuleContext:
    version: LonghornVersion = DEFAULT_VERSION
    facts: ClusterFacts = field(default_factory=ClusterFacts)
    longhorn_namespace: str = LONGHORN_NAMESPACE
    # The stored object on an UPDATE (the webhook's oldObject); None on CREATE and offline.
    previous: Mapping[str, Any] | None = None
    # True where the requester was seen (the webhook: it lets Longhorn's own service
    # accounts through before any rule runs); False offline, where `evaluate` reports the
    # errors of a `userCreated: false` object as warnings.
    requester_known: bool = False


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def as_text(value: Any) -> str | None:
    """`value` when it is a string, else None (a wrong type is the field-type rule's report)."""
    return value if type(value) is str or isinstance(value, str) else None


def as_mapping(value: Any) -> Mapping[str, Any]:
    """`value` when it is a mapping, else an empty one."""
    # The dict test first: isinstance against the Mapping ABC costs several times more.
    return value if type(value) is dict or isinstance(value, Mapping) else _EMPTY


class Manifest:
    """Typed, forgiving access to one object: a getter returns None for a wrong type.

    Wrong types are reported once, by the field-type rule; other rules then see None and
    stay silent instead of reporting the same mistake again.

    The parts every rule reads are plain attributes, read once per object (read-only by
    convention): the webhook evaluates each review, and a path walk per read cost more than
    some rules' whole check.
    """

    __slots__ = (
        "backup_url",
        "backup_url_error",
        "kind",
        "longhorn_owned",
        "metadata",
        "name",
        "namespace",
        "obj",
        "raw_source_parameters",
        "source_parameters",
        "source_type",
        "spec",
    )

    def __init__(self, obj: Mapping[str, Any]) -> None:
        # Exact types are tested inline and the helpers only called for anything else: this
        # runs once per review, where every Python call costs more than the tests.
        self.obj = obj
        kind, metadata, spec = obj.get("kind"), obj.get("metadata"), obj.get("spec")
        self.kind: str = kind if type(kind) is str else as_text(kind) or ""
        # Empty when missing or not a mapping.
        self.metadata: Mapping[str, Any] = (
            metadata if type(metadata) is dict else as_mapping(metadata)
        )
        self.spec: Mapping[str, Any] = spec if type(spec) is dict else as_mapping(spec)
        # A BackupBackingImage as Longhorn's backup-target sync writes it (userCreated: false).
        # A field anyone can set, so it exempts nothing by itself: the webhook tells Longhorn
        # by the requester, and offline `evaluate` reports its errors as warnings.
        self.longhorn_owned: bool = (
            self.kind == "BackupBackingImage" and self.spec.get("userCreated") is False
        )
        name, namespace = self.metadata.get("name"), self.metadata.get("namespace")
        self.name: str = name if type(name) is str else as_text(name) or ""
        self.namespace: str | None = namespace if type(namespace) is str else as_text(namespace)
        source_type = self.spec.get("sourceType")
        self.source_type: str | None = (
            source_type if type(source_type) is str else as_text(source_type)
        )
        # spec.sourceParameters as written, and its string values stripped as Longhorn's
        # mutator strips them (the view most rules want).
        params = self.spec.get("sourceParameters")
        params = params if type(params) is dict else as_mapping(params)
        self.raw_source_parameters: Mapping[str, Any] = params
        stripped: dict[str, str] = {}
        for key, value in params.items():  # a loop: a comprehension is one more call
            if isinstance(key, str) and isinstance(value, str):
                stripped[key] = value.strip()
        self.source_parameters: Mapping[str, str] = stripped
        # A restore's backup-url, parsed here once for the rules that read it. A parse error
        # is kept for the rule that reports it.
        self.backup_url: BackingImageBackupURL | None = None
        self.backup_url_error: InvalidBackupURL | None = None
        url = stripped.get("backup-url")
        if url is not None and self.source_type == "restore":
            try:
                self.backup_url = parse_backup_url(url)
            except InvalidBackupURL as exc:
                self.backup_url_error = exc

    def get(self, path: Path) -> Any:
        """The value at `path`, or None when any step is missing or of the wrong type."""
        node: Any = self.obj
        for part in path:
            if type(part) is str and type(node) is dict:
                if part not in node:
                    return None
            elif isinstance(part, int):
                if not isinstance(node, list) or part >= len(node):
                    return None
            elif not isinstance(node, Mapping) or part not in node:
                return None
            node = node[part]
        return node

    def text(self, path: Path) -> str | None:
        return as_text(self.get(path))


# A generator, or a list when the check builds one anyway.
Check = Callable[[Manifest, RuleContext], Iterable[Finding]]

LONGHORN_MANAGER = "longhorn/longhorn-manager"
BACKING_IMAGE_MANAGER = "longhorn/backing-image-manager"
BACKUPSTORE = "longhorn/backupstore"
LONGHORN = "longhorn/longhorn"


@dataclass(frozen=True, slots=True)
class Citation:
    """Where in Longhorn's code a rule's truth comes from: a file of a repository, and the
    version lines (e.g. "1.8-1.12") in which that file behaves as the rule says."""

    repo: str
    path: str
    versions: str

    def __str__(self) -> str:
        return f"{self.repo.removeprefix('longhorn/')} {self.path} ({self.versions})"


def manager(path: str, versions: str) -> Citation:
    """A file of longhorn-manager, where Longhorn's webhook and controllers live."""
    return Citation(LONGHORN_MANAGER, path, versions)


def crds(versions: str) -> Citation:
    """Longhorn's CRDs as shipped (deploy/longhorn.yaml of longhorn/longhorn)."""
    return Citation(LONGHORN, "deploy/longhorn.yaml", versions)


def in_versions(version: LonghornVersion, versions: str) -> bool:
    """Whether `version` is in a line range as citations write it: "1.8-1.12" or "1.8"."""
    low, _, high = versions.partition("-")
    return LonghornVersion.parse(low) <= version <= LonghornVersion.parse(high or low)


@dataclass(frozen=True, slots=True)
class Cel:
    """A rule's check as one ValidatingAdmissionPolicy validation, beside its Python form.

    `expression` is CEL over `object` (and `oldObject` on UPDATE), true when the object
    passes; `message` is its messageExpression, which the generator prefixes with the rule id
    and `path` as Violation prints them. `evaluate`'s guards (the rule's kinds and
    source types) are added by the policy generator, not written here. Only functions of
    Kubernetes' CEL environment may be used (docs/policy.md lists them).
    """

    expression: str
    message: str
    # The finding's path, as the Python check gives it: the message's prefix, and on UPDATE
    # the value that must be unchanged for a failure to count as the stored object's.
    path: Path
    # The finding's severity when this validation fails; None: the rule's.
    severity: Severity | None = None
    # The version lines (as in citations) the validation belongs to.
    versions: str = "1.6-1.12"
    # On UPDATE, an error only when the change introduces it: the webhook's rule (the stored
    # object failed too, with the same value at `path`, is not denied). False for checks of
    # the change itself (they read oldObject).
    introduced_only: bool = True


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    severity: Severity
    kinds: frozenset[str]
    title: str
    doc: str
    check: Check = field(repr=False)
    # The spec.sourceType values the rule can say something about; None: any. `evaluate`
    # skips the rule for other source types (its check stays silent for them anyway).
    source_types: frozenset[str] | None = None
    # Where the behaviour the rule encodes is found in Longhorn's code.
    source: tuple[Citation, ...] = ()
    # The rule as policy validations; empty for rules that need cluster facts (`needs_facts`)
    # and for object-only rules not yet written in CEL.
    cel: tuple[Cel, ...] = ()
    # Reads RuleContext.facts: only the webhook (or a live validate) can check it.
    needs_facts: bool = False
    # Why an object-only rule has no CEL form (what a policy can never see), if so.
    not_in_policy: str = ""
    # What of the rule its CEL form leaves to the webhook, when it cannot express all of it
    # (tests/policy compares verdicts only where the CEL form decides).
    cel_partial: str = ""

    @property
    def policy(self) -> str:
        """How the policy stands to the rule: in it, or why not (the catalogue's column)."""
        if self.cel:
            return (
                f"in the policy, but for {self.cel_partial}"
                if self.cel_partial
                else "in the policy"
            )
        if self.needs_facts:
            return "webhook only: needs cluster facts"
        return f"not in the policy: {self.not_in_policy}" if self.not_in_policy else "webhook only"

    def run(self, manifest: Manifest, ctx: RuleContext) -> Iterator[Violation]:
        for finding in self.check(manifest, ctx):
            yield Violation(
                self.id, finding.severity or self.severity, finding.path, finding.message
            )


RULES: list[Rule] = []


def rule(
    rule_id: str,
    name: str,
    severity: Severity,
    kinds: set[str],
    title: str,
    *,
    source: tuple[Citation, ...],
    source_types: set[str] | None = None,
    cel: tuple[Cel, ...] = (),
    needs_facts: bool = False,
    not_in_policy: str = "",
    cel_partial: str = "",
) -> Callable[[Check], Check]:
    """Register a check; its docstring is the rule's documentation. `source`: the Longhorn
    files (and version lines) it encodes; every rule has one. `source_types`: the source
    types it applies to, when it applies to only some (its check must be silent for others).
    `cel`: the same check as policy validations (tests/policy proves them equal);
    `needs_facts`: the rule reads cluster facts, so it has no CEL form; `not_in_policy`: why
    an object-only rule has none (what a policy never sees); `cel_partial`: what the CEL form
    leaves to the webhook, when it covers only part of the rule."""

    def register(check: Check) -> Check:
        if any(existing.id == rule_id for existing in RULES):
            raise ValueError(f"duplicate rule id {rule_id}")
        if not source:
            raise ValueError(f"rule {rule_id} cites no Longhorn source")
        if (needs_facts or not_in_policy) and cel:
            raise ValueError(f"rule {rule_id} has a CEL form and says it cannot have one")
        if cel_partial and not cel:
            raise ValueError(f"rule {rule_id} says what its CEL form leaves out but has none")
        doc = " ".join((check.__doc__ or "").split())
        only = frozenset(source_types) if source_types is not None else None
        RULES.append(
            Rule(
                rule_id,
                name,
                severity,
                frozenset(kinds),
                title,
                doc,
                check,
                only,
                source,
                cel,
                needs_facts,
                not_in_policy,
                cel_partial,
            )
        )
        return check

    return register
