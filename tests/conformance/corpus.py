"""The conformance corpus: Longhorn's documented and self-written objects, and what it rejects.

Each case is one YAML file under `cases/`: a header document, then the objects, applied in
order. The header (a mapping under `conformance:`) says

    lines:     Longhorn version lines the case holds for ("1.6" ... "1.12")
    source:    where the objects come from (repo, path, tag), also in a comment above it
    expect:    accepted | rejected
    rule:      rejected only: the rule id that must give an error ("new": a check the rule
               set does not have yet, any error id will do)
    requester: user (default) | longhorn (Longhorn's service account wrote the objects)
    operation: CREATE (default) | UPDATE
    old:       UPDATE only: the stored object the update replaces
    cluster:   objects already in the cluster before the case (complete facts); without it
               nothing is known of the cluster beyond the case's own objects
    xfail:     "<rule id>: <finding>" (every line) or {line: reason}: a known wrong verdict
    xfail_in:  the shells the xfail is for (offline, cli, webhook; default all three): the
               CLI has only the files' facts, so a verdict that needs the cluster's can differ

A rejected case holds exactly one object, the one Longhorn rejects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from longhorn_bi.engine.facts import ClusterFacts, facts_from_objects
from longhorn_bi.engine.versions import SUPPORTED_VERSIONS, LonghornVersion

CASES_DIR = Path(__file__).resolve().parent / "cases"
LONGHORN_USER = "system:serviceaccount:longhorn-system:longhorn-service-account"
ADMIN = {"username": "kubernetes-admin", "groups": ["system:masters", "system:authenticated"]}
SERVICE_ACCOUNT = {
    "username": LONGHORN_USER,
    "groups": [
        "system:serviceaccounts",
        "system:serviceaccounts:longhorn-system",
        "system:authenticated",
    ],
}
SHELLS = ("offline", "cli", "webhook")
_KEYS = {
    "lines",
    "source",
    "expect",
    "rule",
    "requester",
    "operation",
    "old",
    "cluster",
    "xfail",
    "xfail_in",
}


class CorpusError(ValueError):
    """A case file that does not follow the format above."""


@dataclass(frozen=True)
class Case:
    path: Path
    lines: tuple[str, ...]
    source: str
    accepted: bool
    rule: str | None
    by_longhorn: bool
    operation: str
    old: Mapping[str, Any] | None
    cluster: tuple[Mapping[str, Any], ...] | None
    xfail: Mapping[str, str]
    xfail_in: frozenset[str]
    objects: tuple[Mapping[str, Any], ...]

    @property
    def name(self) -> str:
        return self.path.relative_to(CASES_DIR).with_suffix("").as_posix()

    @property
    def user_info(self) -> dict[str, Any]:
        return SERVICE_ACCOUNT if self.by_longhorn else ADMIN

    def facts(self, line: str, before: int | None = None) -> ClusterFacts:
        """What is known when object `before` is applied (all objects when None): the
        cluster (complete, when given) and the case's objects applied before it."""
        version = LonghornVersion.parse(line)
        applied = self.objects if before is None else self.objects[:before]
        known = facts_from_objects(applied, version)
        if self.cluster is None:
            return known
        return facts_from_objects(self.cluster, version, complete=True).merged(known)


def _header(path: Path, doc: Any) -> Mapping[str, Any]:
    header = doc.get("conformance") if isinstance(doc, Mapping) else None
    if not isinstance(header, Mapping):
        raise CorpusError(f"{path}: the first document must be a `conformance:` header")
    unknown = set(header) - _KEYS
    if unknown:
        raise CorpusError(f"{path}: unknown header keys {sorted(unknown)}")
    return header


def load_case(path: Path) -> Case:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    if not docs:
        raise CorpusError(f"{path}: empty")
    header, objects = _header(path, docs[0]), tuple(docs[1:])
    lines = tuple(str(line) for line in header.get("lines") or ())
    if not lines or any(line not in SUPPORTED_VERSIONS for line in lines):
        raise CorpusError(f"{path}: lines must be some of {', '.join(SUPPORTED_VERSIONS)}")
    expect = header.get("expect")
    if expect not in ("accepted", "rejected"):
        raise CorpusError(f"{path}: expect must be accepted or rejected")
    rule = header.get("rule")
    if (expect == "rejected") != isinstance(rule, str) or not objects:
        raise CorpusError(f"{path}: a rejected case names its rule, an accepted one none")
    if expect == "rejected" and len(objects) != 1:
        raise CorpusError(f"{path}: a rejected case holds exactly one object")
    if not isinstance(header.get("source"), str):
        raise CorpusError(f"{path}: source (repo, path, tag) is required")
    xfail = header.get("xfail") or {}
    if isinstance(xfail, str):
        xfail = dict.fromkeys(lines, xfail)
    cluster = header.get("cluster")
    return Case(
        path=path,
        lines=lines,
        source=header["source"],
        accepted=expect == "accepted",
        rule=rule,
        by_longhorn=header.get("requester", "user") == "longhorn",
        operation=header.get("operation", "CREATE"),
        old=header.get("old"),
        cluster=tuple(cluster) if cluster is not None else None,
        xfail={str(k): str(v) for k, v in xfail.items()},
        xfail_in=frozenset(header.get("xfail_in") or SHELLS),
        objects=objects,
    )


def load_corpus(root: Path = CASES_DIR) -> list[Case]:
    return [load_case(path) for path in sorted(root.rglob("*.yaml"))]


def case_lines(cases: list[Case]) -> Iterator[tuple[Case, str]]:
    for case in cases:
        for line in case.lines:
            yield case, line
