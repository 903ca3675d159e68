"""Render a validation report as text, JSON, JUnit XML, SARIF 2.1.0 or GitHub annotations."""

from __future__ import annotations

import json
from collections.abc import Callable
from xml.etree import ElementTree

from longhorn_bi import __version__
from longhorn_bi.engine.rules import RULES, Severity
from longhorn_bi.engine.validation import Report, Result

TOOL = "longhorn-bi"
INFORMATION_URI = "https://github.com/longhorn-bi/longhorn-bi#rule-catalogue"


def summary_line(report: Report) -> str:
    def plural(n: int, word: str) -> str:
        return f"{n} {word}{'' if n == 1 else 's'}"

    return (
        f"{plural(report.documents, 'document')} checked, {report.skipped} skipped: "
        f"{plural(report.errors, 'error')}, {plural(report.warnings, 'warning')}"
    )


def _where(result: Result) -> str:
    subject = f" ({result.kind}/{result.name})" if result.kind else ""
    path = f" {result.path}:" if result.path else ""
    return f"{result.file}:{result.line}:{result.column}: {result.severity} [{result.rule}]{path} {result.message}{subject}"


def render_text(report: Report) -> str:
    return "".join(f"{_where(r)}\n" for r in report.results) + summary_line(report) + "\n"


def render_json(report: Report) -> str:
    document = {"summary": report.summary(), "results": [r.as_dict() for r in report.results]}
    return json.dumps(document, indent=2) + "\n"


def render_github(report: Report) -> str:
    def escape(text: str, properties: bool = False) -> str:
        text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
        return text.replace(":", "%3A").replace(",", "%2C") if properties else text

    lines = []
    for r in report.results:
        level = "error" if r.severity is Severity.ERROR else "warning"
        props = (
            f"file={escape(r.file, True)},line={r.line},col={r.column},title={escape(r.rule, True)}"
        )
        lines.append(
            f"::{level} {props}::{escape((r.path + ': ' if r.path else '') + r.message)}\n"
        )
    return "".join(lines) + summary_line(report) + "\n"


def render_junit(report: Report) -> str:
    suites = ElementTree.Element("testsuites", name=TOOL)
    by_file: dict[str, list[Result]] = {}
    for r in report.results:
        by_file.setdefault(r.file, []).append(r)
    for file, cases in report.checked_by_file().items():
        failing = by_file.get(file, [])
        suite = ElementTree.SubElement(
            suites,
            "testsuite",
            name=file,
            tests=str(len(cases) or 1),
            failures=str(sum(1 for r in failing if r.severity is Severity.ERROR)),
            errors="0",
            skipped="0",
        )
        seen: set[tuple[str, str]] = set()
        for kind, name in cases or [("", "")]:
            if (kind, name) in seen:
                continue
            seen.add((kind, name))
            case = ElementTree.SubElement(
                suite, "testcase", classname=file, name=f"{kind}/{name}" if kind else file
            )
            for r in failing:
                if (r.kind, r.name) != (kind, name):
                    continue
                tag = "failure" if r.severity is Severity.ERROR else "system-out"
                element = ElementTree.SubElement(case, tag)
                if tag == "failure":
                    element.set("type", r.rule)
                    element.set("message", r.message)
                element.text = _where(r)
    ElementTree.indent(suites)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        + ElementTree.tostring(suites, encoding="unicode")
        + "\n"
    )


def render_sarif(report: Report) -> str:
    rules = [
        {
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.title},
            "fullDescription": {"text": r.doc},
            "defaultConfiguration": {
                "level": "error" if r.severity is Severity.ERROR else "warning"
            },
            "helpUri": f"{INFORMATION_URI}",
            "properties": {"longhornSource": [str(c) for c in r.source]},
        }
        for r in RULES
    ]
    results = [
        {
            "ruleId": r.rule,
            "level": "error" if r.severity is Severity.ERROR else "warning",
            "message": {"text": (f"{r.path}: " if r.path else "") + r.message},
            "locations": [
                {
                    "physicalLocation": {
                        "artifactLocation": {"uri": r.file},
                        "region": {"startLine": max(r.line, 1), "startColumn": max(r.column, 1)},
                    }
                }
            ],
        }
        for r in report.results
    ]
    sarif = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": TOOL,
                        "version": __version__,
                        "informationUri": INFORMATION_URI,
                        "rules": rules,
                    }
                },
                "results": results,
            }
        ],
    }
    return json.dumps(sarif, indent=2) + "\n"


RENDERERS: dict[str, Callable[[Report], str]] = {
    "text": render_text,
    "json": render_json,
    "junit": render_junit,
    "sarif": render_sarif,
    "github": render_github,
}
