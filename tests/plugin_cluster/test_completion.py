"""Shell completion: kubectl's plugin completion hook, and click's scripts for each shell."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.plugin_cluster.conftest import Cluster, backup
from tests.support import VENV_BIN, run_cli

COMPLETE = VENV_BIN / "kubectl_complete-longhorn_bi"
COMMANDS = [
    "backup",
    "checksum",
    "completion",
    "describe",
    "list",
    "policy",
    "restore",
    "rules",
    "store",
    "validate",
    "verify",
]


def complete(*words: str) -> list[str]:
    result = subprocess.run(
        [str(COMPLETE), *words], capture_output=True, text=True, timeout=60, check=True
    )
    return result.stdout.splitlines()


def test_subcommands_with_descriptions_and_no_file_completion():
    *lines, directive = complete("")
    assert [line.split("\t")[0] for line in lines] == COMMANDS
    assert all("\t" in line for line in lines)  # cobra shows the text after the tab
    assert directive == ":4"  # ShellCompDirectiveNoFileComp
    assert complete("de") == ["describe\tShow a backup: spec, status, its backup...", ":4"]


def test_flags_and_choices():
    lines = complete("backup", "bi1", "--dry")
    assert lines[0].startswith("--dry-run\t") and lines[-1] == ":4"
    assert complete("list", "-o", "") == ["wide", "json", "yaml", ":4"]
    assert complete("completion", "") == ["bash", "zsh", "fish", ":4"]


def test_validate_paths_are_left_to_the_shell():
    assert complete("validate", "exam") == [":0"]  # ShellCompDirectiveDefault: file names


def test_names_come_from_the_cluster(cluster: Cluster):
    cluster.seed(backup("bi1-backup", "bi1"), backup("bi1-weekly", "bi1"), backup("other", "bi1"))
    kubeconfig = str(cluster.kubeconfig)
    assert complete("describe", "--kubeconfig", kubeconfig, "bi1-") == [
        "bi1-backup",
        "bi1-weekly",
        ":4",
    ]
    assert complete("restore", "copy", "--kubeconfig", kubeconfig, "--from-backup", "ot") == [
        "other",
        ":4",
    ]
    assert complete("backup", "--kubeconfig", kubeconfig, "") == ["bi1", ":4"]


def test_an_unreachable_cluster_completes_nothing_quietly(tmp_path):
    result = subprocess.run(
        [str(COMPLETE), "describe", "--kubeconfig", str(tmp_path / "none"), ""],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout == ":4\n"
    assert result.stderr == ""


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_real_kubectl_completes_the_plugin():
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["kubectl", "__complete", "longhorn-bi", "li"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].split("\t")[0] == "list"
    assert result.stdout.splitlines()[-1] == ":4"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_scripts_use_the_plugins_variable(shell: str):
    result = run_cli("completion", shell)
    assert result.returncode == 0, result.stderr
    assert "_KUBECTL_LONGHORN_BI_COMPLETE" in result.stdout
    assert "kubectl-longhorn_bi" in result.stdout


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
def test_the_bash_script_completes_through_the_executable(tmp_path):
    script = tmp_path / "completion.bash"
    script.write_text(run_cli("completion", "bash").stdout)
    probe = (
        f"source {script}\n"
        "COMP_WORDS=(kubectl-longhorn_bi r)\nCOMP_CWORD=1\n"
        "_kubectl_longhorn_bi_completion kubectl-longhorn_bi\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["bash", "-c", probe], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["restore", "rules"]
