"""The engine stays pure of shell frameworks: no click, aiohttp or kubernetes import in it."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support import REPO

FORBIDDEN_IN_ENGINE = {
    "click",
    "aiohttp",
    "kubernetes",
    "tqdm",
    "longhorn_bi.plugin",
    "longhorn_bi.webhook",
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_engine_imports_no_shell_framework() -> None:
    offenders = {}
    for path in (REPO / "engine").rglob("*.py"):
        bad = {
            m
            for m in imported_modules(path)
            if any(m == f or m.startswith(f + ".") for f in FORBIDDEN_IN_ENGINE)
        }
        if bad:
            offenders[str(path.relative_to(REPO))] = sorted(bad)
    assert offenders == {}


def test_plugin_never_imports_the_webhook() -> None:
    for path in (REPO / "plugin").rglob("*.py"):
        assert not any(m.startswith("longhorn_bi.webhook") for m in imported_modules(path)), path


def test_one_import_style_everywhere() -> None:
    """Code imports the installed names (longhorn_bi.engine), never the bare folders."""
    for folder in ("engine", "plugin", "webhook", "tests", "benchmarks", "longhorn_bi"):
        for path in (REPO / folder).rglob("*.py"):
            bare = {
                m
                for m in imported_modules(path)
                if m.split(".")[0] in {"engine", "plugin", "webhook"}
            }
            assert not bare, f"{path}: {bare}"
