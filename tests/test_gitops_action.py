"""The composite GitHub Action: action.yml's shape, the README's workflow, and its steps
(action/run.sh) run as the runner would, with the environment GitHub gives them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gitops_support import checkout_copy
from tests.support import REPO, VENV_BIN, readme_snippet

ACTION: dict[str, Any] = yaml.safe_load((REPO / "action.yml").read_text())
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
EXAMPLES = REPO / "examples" / "gitops"


def readme_step() -> dict[str, Any]:
    workflow = yaml.safe_load(readme_snippet("github-action"))
    [job] = workflow["jobs"].values()
    steps: list[dict[str, Any]] = job["steps"]
    return next(s for s in steps if s.get("uses", "").startswith("longhorn-bi/longhorn-bi@"))


def step_env(step_id: str, given: dict[str, str]) -> dict[str, str]:
    """The env of an action step, `${{ inputs.X }}` filled from `given` or X's default."""
    step = next(s for s in ACTION["runs"]["steps"] if s.get("id") == step_id)
    filled = {}
    for key, value in step.get("env", {}).items():
        match = re.fullmatch(r"\$\{\{ inputs\.([\w-]+) \}\}", value)
        assert match, value
        name = match.group(1)
        filled[key] = str(given.get(name, ACTION["inputs"][name]["default"]))
    return filled


def run_step(
    command: str, workspace: Path, given: dict[str, str], extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(workspace / "github-output"),
        **step_env(command, given),
        **(extra or {}),
    }
    return subprocess.run(
        ["bash", str(REPO / "action" / "run.sh"), command],
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_action_is_composite_and_its_steps_are_the_script() -> None:
    assert ACTION["runs"]["using"] == "composite"
    runs = [s["run"] for s in ACTION["runs"]["steps"] if "run" in s]
    assert runs == [
        '"$GITHUB_ACTION_PATH/action/run.sh" install',
        '"$GITHUB_ACTION_PATH/action/run.sh" validate',
    ]
    assert all(s["shell"] == "bash" for s in ACTION["runs"]["steps"] if "run" in s)
    passed = set(step_env("validate", {})) | {"python-version"}
    assert {f"INPUT_{n.upper().replace('-', '_')}" for n in ACTION["inputs"]} - {
        "INPUT_PYTHON_VERSION"
    } == passed - {"python-version"}


def test_the_readme_workflow_uses_this_action_at_its_version() -> None:
    step = readme_step()
    assert step["uses"] == f"longhorn-bi/longhorn-bi@v{VERSION}"
    assert set(step["with"]) <= set(ACTION["inputs"])
    workflow = yaml.safe_load(readme_snippet("github-action"))
    [job] = workflow["jobs"].values()
    upload = next(s for s in job["steps"] if "upload-sarif" in s.get("uses", ""))
    assert upload["with"]["sarif_file"] == step["with"]["sarif-file"]
    assert job["permissions"]["security-events"] == "write"


def test_the_validate_step_with_the_readme_inputs(tmp_path: Path) -> None:
    given = readme_step()["with"]
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "good.yaml").write_text((EXAMPLES / "good.yaml").read_text())
    passed = run_step("validate", tmp_path, given)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert passed.stdout.endswith("3 documents checked, 0 skipped: 0 errors, 0 warnings\n")
    sarif_path = tmp_path / given["sarif-file"]
    assert json.loads(sarif_path.read_text())["runs"][0]["results"] == []
    assert f"sarif-file={given['sarif-file']}" in (tmp_path / "github-output").read_text()

    (tmp_path / "manifests" / "bad.yaml").write_text((EXAMPLES / "bad.yaml").read_text())
    failed = run_step("validate", tmp_path, given)
    assert failed.returncode == 1
    assert (
        "::error file=manifests/bad.yaml,line=11,col=5,title=LHB202::"
        "spec.sourceParameters.concurrent-limit:" in failed.stdout
    )
    rules = {r["ruleId"] for r in json.loads(sarif_path.read_text())["runs"][0]["results"]}
    assert {"LHB202", "LHB005"} <= rules


def test_strictness_and_version_pass_through(tmp_path: Path) -> None:
    # A restore without a checksum is a warning; a backup without spec.backingImage is right
    # on 1.6 and an error from 1.8 on.
    (tmp_path / "b.yaml").write_text(
        "apiVersion: longhorn.io/v1beta2\nkind: BackingImage\nmetadata:\n  name: parrot-copy\n"
        "  namespace: longhorn-system\nspec:\n  sourceType: restore\n  sourceParameters:\n"
        "    backup-url: s3://bucket@us-east-1/?backingImage=parrot\n---\n"
        "apiVersion: longhorn.io/v1beta2\nkind: BackupBackingImage\nmetadata:\n  name: parrot\n"
        "  namespace: longhorn-system\nspec:\n  userCreated: true\n"
    )
    lenient = run_step("validate", tmp_path, {"paths": "b.yaml", "longhorn-version": "1.6"})
    strict = run_step(
        "validate", tmp_path, {"paths": "b.yaml", "longhorn-version": "1.6", "strict": "true"}
    )
    newer = run_step("validate", tmp_path, {"paths": "b.yaml", "longhorn-version": "1.9"})
    assert (lenient.returncode, strict.returncode, newer.returncode) == (0, 1, 1)
    assert "::warning " in lenient.stdout and "::error " not in lenient.stdout
    assert "title=LHB302" in newer.stdout


def test_bad_inputs_are_errors_naming_the_input(tmp_path: Path) -> None:
    wrong = run_step("validate", tmp_path, {"strict": "maybe"})
    assert wrong.returncode == 2
    assert "::error title=longhorn-bi action::strict: 'maybe' is not true or false" in wrong.stdout
    missing = run_step("validate", tmp_path, {"paths": "nowhere/"})
    assert missing.returncode == 2
    assert "nowhere/: no such file or directory" in missing.stderr


@pytest.mark.slow
def test_the_install_step_installs_the_locked_runtime_and_this_version(tmp_path: Path) -> None:
    checkout = tmp_path / "action"
    checkout_copy(checkout, extra=("action", "requirements/runtime.txt"))
    runner_temp = tmp_path / "runner"
    runner_temp.mkdir()
    github_path = tmp_path / "github-path"
    result = subprocess.run(
        ["bash", str(checkout / "action" / "run.sh"), "install"],
        cwd=tmp_path,
        env={
            **os.environ,
            "RUNNER_TEMP": str(runner_temp),
            "GITHUB_PATH": str(github_path),
            "LONGHORN_BI_PYTHON": sys.executable,
        },
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    [added] = github_path.read_text().splitlines()
    assert added == str(runner_temp / "longhorn-bi-action" / "bin")
    assert result.stdout.strip().endswith(f"version {VERSION}")
    version = subprocess.run(
        [f"{added}/kubectl-longhorn_bi", "--version"], capture_output=True, text=True, check=True
    )
    assert VERSION in version.stdout
