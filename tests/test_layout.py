"""Packaging and layering guards."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    mapping = config["package-dir"]
    found = set()
    for name, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *relative.parts]))
    assert found == listed, f"pyproject packages {sorted(listed)} != folders {sorted(found)}"


def test_installed_names_map_to_the_top_level_folders() -> None:
    from longhorn_bi.engine import errors

    assert Path(errors.__file__).resolve() == ROOT / "engine" / "errors.py"
