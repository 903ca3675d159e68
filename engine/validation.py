"""The GitOps validator's core: documents in, findings with file positions out.

Facts are gathered across all given documents first (a BackupTarget or the backup-target
Setting says whether a target is configured; a BackingImage in the set exists), merged with
live cluster facts when the caller has them, then every document is evaluated.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from longhorn_bi.engine.documents import SourceDocument
from longhorn_bi.engine.errors import ManifestError
from longhorn_bi.engine.facts import ClusterFacts, facts_from_objects, is_longhorn_object
from longhorn_bi.engine.rules import CHECKED_KINDS, RuleContext, Severity, evaluate
from longhorn_bi.engine.rules.base import LONGHORN_NAMESPACE
from longhorn_bi.engine.versions import DEFAULT_VERSION, LonghornVersion

PARSE_ERROR_RULE = "LHB000"


@dataclass(frozen=True)
class Result:
    file: str
    line: int
    column: int
    kind: str
    name: str
    rule: str
    severity: Severity
    path: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "kind": self.kind,
            "name": self.name,
            "rule": self.rule,
            "severity": str(self.severity),
            "path": self.path,
            "message": self.message,
        }


@dataclass
class Report:
    documents: int = 0
    skipped: int = 0
    results: list[Result] = field(default_factory=list)
    # (file, kind, name) of every document checked, for reports that list passing ones too.
    checked: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(1 for r in self.results if r.severity is Severity.ERROR)

    @property
    def warnings(self) -> int:
        return sum(1 for r in self.results if r.severity is Severity.WARNING)

    def summary(self) -> dict[str, int]:
        return {
            "documents": self.documents,
            "skipped": self.skipped,
            "errors": self.errors,
            "warnings": self.warnings,
        }

    def checked_by_file(self) -> dict[str, list[tuple[str, str]]]:
        files: dict[str, list[tuple[str, str]]] = {}
        for file, kind, name in self.checked:
            files.setdefault(file, []).append((kind, name))
        for result in self.results:
            files.setdefault(result.file, [])
        return files

    def add_parse_error(self, error: ManifestError) -> None:
        self.results.append(
            Result(
                error.source,
                error.line,
                error.column,
                "",
                "",
                PARSE_ERROR_RULE,
                Severity.ERROR,
                "",
                str(error),
            )
        )


def is_checked(obj: Any) -> bool:
    """Whether a document is a Longhorn object the rule set checks."""
    if not isinstance(obj, Mapping):
        return False
    kind = obj.get("kind")
    if not isinstance(kind, str) or kind not in CHECKED_KINDS or not is_longhorn_object(obj, kind):
        return False
    # Of the Settings only the backup target's matters here.
    return kind != "Setting" or (
        isinstance(obj.get("metadata"), Mapping) and obj["metadata"].get("name") == "backup-target"
    )


def validate_documents(
    documents: Iterable[SourceDocument],
    *,
    version: LonghornVersion = DEFAULT_VERSION,
    namespace: str = LONGHORN_NAMESPACE,
    cluster_facts: ClusterFacts | None = None,
    report: Report | None = None,
) -> Report:
    report = report or Report()
    checked: list[SourceDocument] = []
    for document in documents:
        if is_checked(document.obj):
            checked.append(document)
        else:
            report.skipped += 1
    facts = facts_from_objects((d.obj for d in checked), version)
    if cluster_facts is not None:
        facts = facts.merged(cluster_facts)
    ctx = RuleContext(version=version, facts=facts, longhorn_namespace=namespace)
    for document in checked:
        report.documents += 1
        obj = document.obj
        metadata = obj.get("metadata")
        name = metadata.get("name") if isinstance(metadata, Mapping) else None
        name = name if isinstance(name, str) else ""
        report.checked.append((document.source, str(obj.get("kind")), name))
        for violation in evaluate(obj, ctx):
            line, column = document.position_of(violation.path)
            report.results.append(
                Result(
                    document.source,
                    line,
                    column,
                    str(obj.get("kind")),
                    name,
                    violation.rule,
                    violation.severity,
                    violation.path_str,
                    violation.message,
                )
            )
    return report
