"""The pre-commit hook, through the real `pre-commit` and `git commit`, configured as the
README's snippet says, against a copy of this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.gitops_support import GIT_ENV, checkout_copy, git
from tests.support import REPO, VENV_BIN, readme_snippet

pytestmark = pytest.mark.slow  # the first run installs the hook's environment (~25 s)

# CI points PRE_COMMIT_HOME at a cached folder; by hand it lives in the worktree's .build/.
PRE_COMMIT_HOME = Path(os.environ.get("PRE_COMMIT_HOME") or REPO / ".build" / "pre-commit")


@pytest.fixture(scope="module")
def hook_repo() -> tuple[Path, str]:
    # pre-commit keys its environments by repository path and commit: a stable path and a
    # commit fixed by content let a later run reuse the environment.
    path = PRE_COMMIT_HOME.parent / "longhorn-bi-hook"
    shutil.rmtree(path, ignore_errors=True)
    return path, checkout_copy(path, extra=(".pre-commit-hooks.yaml",))


def project(tmp_path: Path, hook_repo: tuple[Path, str]) -> Path:
    """A scratch repository with the README's configuration, pointed at the copy."""
    config = yaml.safe_load(readme_snippet("pre-commit"))
    [repo] = config["repos"]
    assert repo["repo"] == "https://github.com/longhorn-bi/longhorn-bi"
    repo["repo"], repo["rev"] = str(hook_repo[0]), hook_repo[1]
    path = tmp_path / "project"
    path.mkdir()
    git("init", "--quiet", "--initial-branch=main", cwd=path)
    (path / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run([str(VENV_BIN / "pre-commit"), "install"], cwd=path, check=True, env=env())
    return path


def env() -> dict[str, str]:
    return {**os.environ, **GIT_ENV, "PRE_COMMIT_HOME": str(PRE_COMMIT_HOME)}


def commit(path: Path, *files: str) -> subprocess.CompletedProcess[str]:
    git("add", *files, cwd=path)
    return subprocess.run(
        ["git", "commit", "--message=change"],
        cwd=path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_a_bad_manifest_fails_the_commit_with_its_findings(
    tmp_path: Path, hook_repo: tuple[Path, str]
) -> None:
    path = project(tmp_path, hook_repo)
    (path / "bad.yaml").write_text((REPO / "examples" / "gitops" / "bad.yaml").read_text())
    result = commit(path, "bad.yaml", ".pre-commit-config.yaml")
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "longhorn-bi validate" in output and "Failed" in output
    assert "bad.yaml:11:5: error [LHB202] spec.sourceParameters.concurrent-limit:" in output
    with pytest.raises(subprocess.CalledProcessError):
        git("rev-parse", "--verify", "HEAD", cwd=path)


def test_a_good_manifest_passes_and_helm_templates_are_excluded(
    tmp_path: Path, hook_repo: tuple[Path, str]
) -> None:
    path = project(tmp_path, hook_repo)
    (path / "good.yaml").write_text((REPO / "examples" / "gitops" / "good.yaml").read_text())
    template = path / "charts" / "app" / "templates" / "image.yaml"
    template.parent.mkdir(parents=True)
    template.write_text("kind: BackingImage\nmetadata:\n  name: {{ .Values.name }}\n")
    result = commit(path, "good.yaml", "charts", ".pre-commit-config.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "longhorn-bi validate" in output and "Passed" in output
    assert git("log", "--format=%s", cwd=path) == "change"
