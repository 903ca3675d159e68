"""The Kubernetes client is imported only by what talks to a cluster."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.fakekube import write_kubeconfig

PROBE = (
    "import sys\n"
    "from longhorn_bi.plugin.cli import cli\n"
    "try:\n"
    "    cli.main({args!r}, prog_name='kubectl longhorn-bi')\n"
    "except (SystemExit, Exception):\n"
    "    pass\n"
    "print('LOADED', 'kubernetes' in sys.modules)\n"
)


def loads_kubernetes(*args: str) -> bool:
    result = subprocess.run(
        [sys.executable, "-c", PROBE.format(args=list(args))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("LOADED "), result.stderr
    return last == "LOADED True"


@pytest.mark.parametrize(
    "args",
    [
        ("backup", "bi1"),
        ("restore", "bi1", "--backup-url", "s3://b@us-east-1/?backingImage=bi1"),
        ("completion", "bash"),
        ("rules",),
    ],
    ids=" ".join,
)
def test_offline_verbs_do_not_import_the_client(args: tuple[str, ...]):
    assert not loads_kubernetes(*args)


def test_a_cluster_verb_does(tmp_path):
    write_kubeconfig(tmp_path / "kubeconfig", "http://127.0.0.1:9")
    assert loads_kubernetes(
        "list", "--kubeconfig", str(tmp_path / "kubeconfig"), "--request-timeout", "1s"
    )
