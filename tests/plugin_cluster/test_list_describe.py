"""`list` and `describe`, through the plugin executable and through the real kubectl."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess

import pytest
import yaml

from longhorn_bi.plugin.cluster_cmds import human_age, human_size
from tests.plugin_cluster.conftest import NS, TARGET_URL, Cluster, backup
from tests.support import VENV_BIN

OLD = "2020-01-01T00:00:00Z"


def seed_backups(cluster: Cluster) -> None:
    first = backup("bi1-backup", "bi1", size=3 * 1024 * 1024)
    first["metadata"]["creationTimestamp"] = OLD
    running = backup("bi2-backup", "bi2", state="InProgress", progress=45, target="offsite")
    cluster.seed(first, running)


def test_list_is_a_kubectl_like_table(cluster: Cluster):
    seed_backups(cluster)
    result = cluster.cli("list")
    assert result.returncode == 0, result.stderr
    header, *rows = result.stdout.splitlines()
    columns = ["NAME", "BACKING-IMAGE", "TARGET", "STATE", "PROGRESS", "SIZE", "VERIFIED", "AGE"]
    assert header.split() == columns
    assert rows[0].split()[:7] == [
        "bi1-backup",
        "bi1",
        "default",
        "Completed",
        "100%",
        "3Mi",
        "<none>",
    ]
    assert re.fullmatch(r"\d+y\d*d?", rows[0].split()[7])
    assert rows[1].split()[:6] == ["bi2-backup", "bi2", "offsite", "InProgress", "45%", "<none>"]
    # Columns line up: every cell of a column starts where its header does.
    assert header.index("STATE") == rows[0].index("Completed") == rows[1].index("InProgress")


def test_list_wide_adds_url_and_checksum(cluster: Cluster):
    seed_backups(cluster)
    result = cluster.cli("list", "-o", "wide")
    header, first, _ = result.stdout.splitlines()
    assert header.split()[-4:] == ["USER-CREATED", "COMPRESSION", "CHECKSUM", "URL"]
    assert first.split()[-4:] == [
        "true",
        "lz4",
        "abababababab...",
        f"{TARGET_URL}?backingImage=bi1",
    ]


@pytest.mark.parametrize("fmt", ["json", "yaml"])
def test_list_as_json_or_yaml_is_a_v1_list(cluster: Cluster, fmt: str):
    seed_backups(cluster)
    result = cluster.cli("list", "-o", fmt)
    data = json.loads(result.stdout) if fmt == "json" else yaml.safe_load(result.stdout)
    assert data["kind"] == "List" and data["apiVersion"] == "v1"
    assert [i["metadata"]["name"] for i in data["items"]] == ["bi1-backup", "bi2-backup"]
    assert data["items"][0]["kind"] == "BackupBackingImage"


def test_list_filters_by_image_and_namespace(cluster: Cluster):
    seed_backups(cluster)
    result = cluster.cli("list", "--backing-image", "bi2")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == ["bi2-backup"]
    result = cluster.cli("list", "-n", "elsewhere")
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == "No resources found in elsewhere namespace.\n"


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_real_kubectl_runs_list(cluster: Cluster):
    seed_backups(cluster)
    env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(
        ["kubectl", "longhorn-bi", "list", "--kubeconfig", str(cluster.kubeconfig)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0].startswith("NAME ")
    assert result.stdout.splitlines()[1].split()[0] == "bi1-backup"


def test_describe_shows_spec_status_target_and_a_restore_command_that_works(cluster: Cluster):
    seed_backups(cluster)
    result = cluster.cli("describe", "bi1-backup")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Name:           bi1-backup" in text
    assert "Backing Image:  bi1" in text
    assert "State:          Completed" in text
    assert "Longhorn:       1.12" in text
    assert f"  URL:        {TARGET_URL}" in text
    assert "  Available:  true" in text
    assert "Spec:\n  backingImage: bi1\n  backupTargetName: default\n  userCreated: true" in text
    assert "Status:\n  backingImage: bi1\n" in text
    assert "BackingImage 'bi1' exists now" in text
    command = next(line for line in text.splitlines() if "--from-backup" in line)
    assert command.split() == [
        "kubectl", "longhorn-bi", "restore", "bi1", "--from-backup", "bi1-backup", "-n", NS,
        "--apply", "--wait",
    ]  # fmt: skip
    # The command does what it says: here as a server-side dry run beside the existing image.
    args = shlex.split(command)[2:]
    args = [a if a != "bi1" else "bi1-restored" for a in args if a != "--wait"]
    rerun = cluster.cli(*args, "--dry-run=server")
    assert rerun.returncode == 0, rerun.stderr
    restored = yaml.safe_load(rerun.stdout)
    assert restored["spec"]["sourceParameters"]["backup-url"] == f"{TARGET_URL}?backingImage=bi1"


def test_describe_of_an_unfinished_backup_says_when_it_can_be_restored(cluster: Cluster):
    seed_backups(cluster)
    result = cluster.cli("describe", "bi2-backup")
    assert result.returncode == 0, result.stderr
    assert "Progress:       45%" in result.stdout
    assert "(no BackupTarget of this name exists)" in result.stdout
    assert "(possible once the backup is Completed)" in result.stdout


def test_describe_on_longhorn_16_reads_the_backup_target_setting(cluster16: Cluster):
    cluster16.seed(backup("bi1", "bi1"))
    result = cluster16.cli("describe", "bi1")
    assert result.returncode == 0, result.stderr
    assert f"  URL:        {TARGET_URL}  (setting backup-target)" in result.stdout
    assert "--backup-target-name" not in result.stdout


@pytest.mark.parametrize(
    ("seconds", "age"),
    [(5, "5s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600, "3h"), (7 * 3600 + 60, "7h1m"),
     (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"), (20 * 86400, "20d"), (800 * 86400, "2y70d")],
)  # fmt: skip
def test_ages_round_like_kubectl(seconds: int, age: str):
    assert human_age(seconds) == age


def test_sizes_are_binary_quantities():
    assert [human_size(v) for v in (512, 1536, 3 * 1024**2, 20 * 1024**3, "4096", 0, None)] == [
        "512", "1.5Ki", "3Mi", "20Gi", "4Ki", "<none>", "<none>",
    ]  # fmt: skip
