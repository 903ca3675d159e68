"""A copy of this checkout as a consumer would fetch it (a git repository at a fixed commit),
for the pre-commit hook and the GitHub Action tests."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import REPO

# What installing the package and running the hook or the action needs.
PACKAGE_FILES = ("pyproject.toml", "README.md", "engine", "plugin", "webhook", "longhorn_bi")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "longhorn-bi tests",
    "GIT_AUTHOR_EMAIL": "tests@longhorn-bi.invalid",
    "GIT_COMMITTER_NAME": "longhorn-bi tests",
    "GIT_COMMITTER_EMAIL": "tests@longhorn-bi.invalid",
    # Fixed dates: the same files give the same commit, so pre-commit reuses its environment.
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return result.stdout.strip()


def checkout_copy(target: Path, extra: tuple[str, ...] = ()) -> str:
    """Copy the package (and `extra` paths) into `target` as a one-commit git repository."""
    target.mkdir(parents=True)
    for name in (*PACKAGE_FILES, *extra):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    git("init", "--quiet", "--initial-branch=main", cwd=target)
    git("add", "--all", cwd=target)
    git("commit", "--quiet", "--message=checkout", cwd=target)
    return git("rev-parse", "HEAD", cwd=target)
