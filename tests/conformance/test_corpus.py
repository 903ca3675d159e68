"""The conformance corpus through the three shells: no error for what Longhorn accepts, the
expected rule's error for what it rejects (cases/, format in corpus.py).

Offline: `evaluate` with the facts of the case's objects and its cluster. CLI: the real
`kubectl longhorn-bi validate`, one run per version line and verdict over the case files.
Webhook: AdmissionReviews over HTTPS to the real aiohttp app, one server for every case, its
version and facts set per case, each object reviewed with the facts of the objects before it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from longhorn_bi.engine.facts import ClusterFacts
from longhorn_bi.engine.rules import CHECKED_KINDS, RuleContext, Severity, evaluate
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.webhook.app import Settings, create_app
from longhorn_bi.webhook.metrics import Metrics
from longhorn_bi.webhook.review import CHECKED_KINDS as REVIEWED_KINDS
from longhorn_bi.webhook.tls import ReloadingTLS
from tests.conformance.corpus import Case, CorpusError, case_lines, load_case, load_corpus
from tests.support import run_cli
from tests.webhook.conftest import make_certs
from tests.webhook.helpers import ThreadedServer, post, review

CASES = load_corpus()
ANY_RULE = "new"  # a check the rule set lacks so far: any error


def _params(shell: str) -> list[Any]:
    return [
        pytest.param(
            case,
            line,
            id=f"{case.name}@{line}",
            marks=[pytest.mark.xfail(strict=True, reason=case.xfail[line])]
            if line in case.xfail and shell in case.xfail_in
            else [],
        )
        for case, line in case_lines(CASES)
    ]


def _checked(case: Case) -> Iterator[tuple[int, dict[str, Any]]]:
    for index, obj in enumerate(case.objects):
        if obj.get("kind") in CHECKED_KINDS:
            yield index, dict(obj)


def _errors(case: Case, line: str, obj: dict[str, Any], before: int | None) -> list[str]:
    ctx = RuleContext(version=LonghornVersion.parse(line), facts=case.facts(line, before))
    return [str(v) for v in evaluate(obj, ctx) if v.severity is Severity.ERROR]


def _expected(case: Case, rule_ids: list[str]) -> bool:
    return bool(rule_ids) if case.rule == ANY_RULE else case.rule in rule_ids


def test_the_corpus_covers_every_version_line_and_both_verdicts() -> None:
    lines = {line for case in CASES for line in case.lines}
    assert lines == {f"1.{minor}" for minor in range(6, 13)}
    assert {case.accepted for case in CASES} == {True, False}
    assert all(case.source for case in CASES)


@pytest.mark.parametrize(
    ("header", "problem"),
    [
        ("lines: ['1.5']\n  source: x\n  expect: accepted", "lines must be"),
        ("lines: ['1.8']\n  source: x\n  expect: rejected", "names its rule"),
        ("lines: ['1.8']\n  expect: accepted", "source"),
        ("lines: ['1.8']\n  source: x\n  expect: fine", "expect must be"),
        ("lines: ['1.8']\n  source: x\n  expect: accepted\n  xfial: y", "unknown header"),
    ],
)
def test_a_malformed_case_is_refused_with_the_reason(
    tmp_path: Path, header: str, problem: str
) -> None:
    path = tmp_path / "case.yaml"
    path.write_text(f"conformance:\n  {header}\n---\nkind: BackingImage\n")
    with pytest.raises(CorpusError, match=problem):
        load_case(path)


@pytest.mark.parametrize(("case", "line"), _params("offline"))
def test_offline(case: Case, line: str) -> None:
    if case.accepted:
        found = {i: _errors(case, line, obj, None) for i, obj in _checked(case)}
        assert not any(found.values()), found
    else:
        _, obj = next(_checked(case))
        errors = _errors(case, line, obj, None)
        ids = [e[1 : e.index("]")] for e in errors]
        assert _expected(case, ids), errors


# --- the CLI: one `validate` run per version line and verdict ---------------------------


@pytest.fixture(scope="module")
def cli_runs() -> dict[tuple[str, bool], dict[str, list[dict[str, Any]]]]:
    """Findings per file, from one run per (version line, accepted) over the case files."""
    runs: dict[tuple[str, bool], dict[str, list[dict[str, Any]]]] = {}
    for line in sorted({line for case in CASES for line in case.lines}):
        for accepted in (True, False):
            files = [str(c.path) for c in CASES if line in c.lines and c.accepted is accepted]
            if not files:
                continue
            result = run_cli("validate", *files, "--longhorn-version", line, "-o", "json")
            assert result.returncode in (0, 1), result.stderr
            report = json.loads(result.stdout)
            by_file: dict[str, list[dict[str, Any]]] = {f: [] for f in files}
            for finding in report["results"]:
                by_file[str(Path(finding["file"]).resolve())].append(finding)
            runs[line, accepted] = by_file
    return runs


@pytest.mark.parametrize(("case", "line"), _params("cli"))
def test_validate_cli(
    case: Case, line: str, cli_runs: dict[tuple[str, bool], dict[str, list[dict[str, Any]]]]
) -> None:
    findings = cli_runs[line, case.accepted][str(case.path)]
    errors = [f for f in findings if f["severity"] == "error"]
    if case.accepted:
        assert not errors, errors
    elif case.cluster is not None:
        pytest.skip("rejected only with the cluster's facts, which files do not give")
    else:
        assert _expected(case, [f["rule"] for f in errors]), findings


# --- the webhook: one HTTPS server, its version and facts set per case --------------------


@dataclass
class CaseFacts:
    """A FactsSource the test sets per case: the server reads it per review."""

    version: LonghornVersion | None = None
    fixed: ClusterFacts = field(default_factory=ClusterFacts)

    def facts(self) -> ClusterFacts:
        return self.fixed

    def ready(self) -> bool:
        return True

    def ages(self) -> Iterator[tuple[str, float | None]]:
        return iter(())


@dataclass
class Webhook:
    server: ThreadedServer
    source: CaseFacts
    ca_file: Path


@pytest.fixture(scope="module")
def webhook(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Webhook]:
    certs = make_certs(tmp_path_factory.mktemp("corpus-certs"))
    tls = ReloadingTLS(certs / "tls.crt", certs / "tls.key")
    source = CaseFacts()
    with ThreadedServer(lambda: create_app(Settings(), source, Metrics()), tls.context) as server:
        yield Webhook(server, source, certs / "ca.crt")


@pytest.mark.parametrize(("case", "line"), _params("webhook"))
def test_webhook(case: Case, line: str, webhook: Webhook) -> None:
    reviewed = [(i, obj) for i, obj in _checked(case) if obj["kind"] in REVIEWED_KINDS]
    if not reviewed:
        pytest.skip("the webhook reviews only BackingImages and BackupBackingImages")
    conn = webhook.server.connect(webhook.ca_file)
    answers = []
    try:
        for index, obj in reviewed:
            # Each object meets the cluster and the objects applied before it.
            webhook.source.fixed = case.facts(line, before=index)
            webhook.source.version = LonghornVersion.parse(line)
            old = dict(case.old) if case.operation == "UPDATE" and case.old else None
            request = review(obj, operation=case.operation, old=old, user_info=case.user_info)
            status, body = post(conn, request)
            assert status == 200, body
            answers.append(body["response"])
    finally:
        conn.close()
    if case.accepted:
        denied = [a for a in answers if not a["allowed"]]
        assert not denied, denied
    else:
        (answer,) = answers
        message = answer.get("status", {}).get("message", "")
        assert answer["allowed"] is False, answer
        ids = [part.split("]")[0] for part in message.split("[")[1:]]
        assert _expected(case, ids), message
