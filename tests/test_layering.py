"""Who may import what: the engine stays pure of shell frameworks, its manifest side and its
backupstore stay apart, drivers stay below the operations, and no import runs in a circle."""

from __future__ import annotations

import ast
import tomllib
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


# The two halves of the engine. What both use (errors, names, versions, backup_url) sits at
# engine/ top level and belongs to neither.
MANIFEST_SIDE = (
    "longhorn_bi.engine.rules",
    "longhorn_bi.engine.documents",
    "longhorn_bi.engine.facts",
    "longhorn_bi.engine.validation",
    "longhorn_bi.engine.manifests",
)
SHARED = tuple(
    f"longhorn_bi.engine.{name}" for name in ("errors", "names", "versions", "backup_url")
)
STORE = "longhorn_bi.engine.store"
DRIVERS = "longhorn_bi.engine.store.drivers"
OPERATIONS = tuple(f"{STORE}.{name}" for name in ("backup", "restore", "verify", "admin"))


def imported_modules(path: Path) -> set[str]:
    """Every module named by an import in the file, at module level or inside a function.

    `from package import name` also yields `package.name`: the name may be a submodule."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def package_modules() -> dict[str, Path]:
    """Installed module name -> file, from pyproject's package-dir mapping."""
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    modules = {}
    for package, folder in config["package-dir"].items():
        for path in (REPO / folder).rglob("*.py"):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join([package, *parts])] = path
    return modules


def import_graph() -> dict[str, set[str]]:
    """longhorn_bi module -> the longhorn_bi modules it imports.

    Only edges the code writes count: the parent packages Python initialises on the way to a
    submodule are not edges (else every package __init__ that imports its children would
    look like a cycle)."""
    modules = package_modules()
    return {
        name: {m for m in imported_modules(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle as a path [a, b, ..., a], or [] when the graph is acyclic."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                cycle = visit(target)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return []


def offenders(
    imports: dict[str, set[str]], sources: tuple[str, ...], banned: tuple[str, ...]
) -> dict[str, list[str]]:
    return {
        name: sorted(m for m in targets if within(m, banned))
        for name, targets in imports.items()
        if within(name, sources) and any(within(m, banned) for m in targets)
    }


def all_imports() -> dict[str, set[str]]:
    return {name: imported_modules(path) for name, path in package_modules().items()}


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


def test_the_manifest_side_never_imports_the_store() -> None:
    assert offenders(all_imports(), MANIFEST_SIDE, (STORE,)) == {}


def test_the_store_never_imports_the_manifest_side() -> None:
    assert offenders(all_imports(), (STORE,), MANIFEST_SIDE) == {}


def test_the_shared_modules_import_neither_half() -> None:
    assert offenders(all_imports(), SHARED, (*MANIFEST_SIDE, STORE)) == {}


def test_drivers_never_import_the_operations_above_them() -> None:
    assert offenders(all_imports(), (DRIVERS,), OPERATIONS) == {}


def test_the_graph_sees_every_module_and_its_edges() -> None:
    """Guards the cycle test below against a graph that is silently empty."""
    graph = import_graph()
    assert f"{DRIVERS}.vfs" in graph[DRIVERS]
    assert f"{DRIVERS}.base" in graph[f"{DRIVERS}.vfs"]
    assert f"{STORE}.direct_write" in graph[f"{DRIVERS}.vfs"]  # `from package import module`
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_package_code_imports_by_absolute_name() -> None:
    """A relative import would hide an edge from the graph below."""
    for path in package_modules().values():
        tree = ast.parse(path.read_text(), filename=str(path))
        assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree)), path


def test_no_import_cycles_among_longhorn_bi_modules() -> None:
    assert find_cycle(import_graph()) == []
