"""Start-up: no heavy import on the CLI's path, every --help works, kubectl finds the plugin."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import click
import pytest

from longhorn_bi.plugin.root import SUBCOMMANDS, cli
from tests.support import VENV_BIN, run_cli

HEAVY = ("kubernetes", "boto3", "botocore", "aiohttp", "smbclient", "smbprotocol", "spnego")


def _all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    ctx = click.Context(group)
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found += _all_commands(command, (*prefix, name))
    return found


def test_importing_and_running_help_loads_no_heavy_module() -> None:
    probe = (
        "import sys\n"
        "from longhorn_bi.plugin.cli import cli\n"
        "try:\n"
        "    cli.main(['--help'], prog_name='kubectl longhorn-bi')\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("command", _all_commands(cli), ids=" ".join)
def test_every_subcommand_has_help_and_loads_no_heavy_module(command: tuple[str, ...]) -> None:
    probe = (
        "import sys\n"
        "from longhorn_bi.plugin.cli import cli\n"
        "try:\n"
        f"    cli.main([*{list(command)!r}, '--help'], prog_name='kubectl longhorn-bi')\n"
        "except SystemExit as exc:\n"
        "    assert exc.code in (0, None), exc.code\n"
        f"print('HEAVY', sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: kubectl longhorn-bi" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "HEAVY []"


def test_every_lazy_subcommand_resolves() -> None:
    ctx = click.Context(cli)
    for name in SUBCOMMANDS:
        assert isinstance(cli.get_command(ctx, name), click.Command)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_real_kubectl_finds_and_runs_the_plugin() -> None:
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    plugins = subprocess.run(
        ["kubectl", "plugin", "list"], capture_output=True, text=True, env=env, check=False
    )
    assert str(VENV_BIN / "kubectl-longhorn_bi") in plugins.stdout
    result = subprocess.run(
        ["kubectl", "longhorn-bi", "--help"], capture_output=True, text=True, env=env, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage: kubectl longhorn-bi" in result.stdout
    printed = subprocess.run(
        ["kubectl", "longhorn-bi", "backup", "parrot", "--longhorn-version", "1.6"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert printed.returncode == 0 and "kind: BackupBackingImage" in printed.stdout


def test_errors_print_a_message_not_a_traceback() -> None:
    result = run_cli("validate", "/nonexistent/path")
    assert result.returncode == 2
    assert result.stderr.startswith("error: /nonexistent/path: no such file or directory")
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback() -> None:
    result = run_cli("--debug", "validate", "/nonexistent/path")
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and "kubectl longhorn-bi, version" in result.stdout
