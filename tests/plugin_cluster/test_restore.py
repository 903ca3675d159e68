"""`restore NAME --from-backup BACKUP`: URL, checksum and target read from the cluster."""

from __future__ import annotations

import yaml

from tests.plugin_cluster.conftest import (
    CHECKSUM,
    NS,
    TARGET_URL,
    Cluster,
    Controller,
    backup,
)

IMAGES = "backingimages"


def play_restore(cluster: Cluster, name: str, *disk_states: dict[str, object]) -> Controller:
    def script() -> None:
        cluster.wait_for_watches(IMAGES, 1)
        for disk in disk_states:
            cluster.server.update_status(IMAGES, NS, name, {"diskFileStatusMap": {"disk-1": disk}})

    controller = Controller(script)
    controller.start()
    return controller


def test_from_backup_fills_url_checksum_and_target(cluster: Cluster):
    cluster.seed(backup("bi1-backup", "bi1", target="default"))
    result = cluster.cli("restore", "bi1-copy", "--from-backup", "bi1-backup")
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert manifest["spec"] == {
        "sourceType": "restore",
        "sourceParameters": {
            "backup-url": f"{TARGET_URL}?backingImage=bi1",
            "backup-target-name": "default",
        },
        "checksum": CHECKSUM,
    }
    assert cluster.requests("PATCH", IMAGES) == []  # printed, not applied


def test_given_flags_win_over_the_backup_and_the_rules_say_so(cluster: Cluster):
    cluster.seed(backup("bi1-backup", "bi1"))
    other = "cd" * 64
    result = cluster.cli("restore", "bi1-copy", "--from-backup", "bi1-backup", "--checksum", other)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["spec"]["checksum"] == other
    assert "warning: [LHB405] spec.checksum: checksum differs" in result.stderr


def test_apply_wait_follows_the_first_copy_until_ready(cluster: Cluster):
    cluster.seed(backup("bi1-backup", "bi1"))
    controller = play_restore(
        cluster,
        "bi1-copy",
        {"state": "pending"},
        {"state": "in-progress", "progress": 30},
        {"state": "in-progress", "progress": 90},
        {"state": "ready", "progress": 100},
    )
    result = cluster.cli("restore", "bi1-copy", "--from-backup", "bi1-backup", "--apply", "--wait")
    controller.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "backingimages.longhorn.io/bi1-copy serverside-applied",
        "backingimages.longhorn.io/bi1-copy ready",
    ]
    assert "backingimage/bi1-copy: in-progress 30%" in result.stderr
    assert "backingimage/bi1-copy: in-progress 90%" in result.stderr
    stored = cluster.server.get(IMAGES, NS, "bi1-copy")
    assert stored is not None
    assert stored["spec"]["sourceParameters"]["backup-url"] == f"{TARGET_URL}?backingImage=bi1"
    assert stored["spec"]["checksum"] == CHECKSUM


def test_a_failed_first_copy_fails_at_once_with_its_message(cluster: Cluster):
    cluster.seed(backup("bi1-backup", "bi1"))
    controller = play_restore(
        cluster,
        "bi1-copy",
        {"state": "in-progress", "progress": 60},
        {"state": "failed", "progress": 60, "message": "checksum mismatch: got 0f0f..."},
    )
    result = cluster.cli("restore", "bi1-copy", "--from-backup", "bi1-backup", "--apply", "--wait")
    controller.join()
    assert result.returncode == 1
    assert "error: BackingImage 'bi1-copy' failed: checksum mismatch: got 0f0f..." in result.stderr
    assert "kubectl -n longhorn-system describe backingimages.longhorn.io bi1-copy" in result.stderr


def test_an_unfinished_or_failed_backup_cannot_be_restored(cluster: Cluster):
    cluster.seed(
        backup("running", "bi1", state="InProgress", progress=45),
        backup("broken", "bi2", state="Error", progress=10),
    )
    result = cluster.cli("restore", "x", "--from-backup", "running")
    assert result.returncode == 1
    assert "backup 'running' is not complete yet (state InProgress at 45%)" in result.stderr
    result = cluster.cli("restore", "x", "--from-backup", "broken")
    assert result.returncode == 1
    assert "--from-backup: backup 'broken' failed" in result.stderr


def test_backup_url_and_from_backup_are_exclusive_and_one_is_needed(cluster: Cluster):
    result = cluster.cli(
        "restore", "x", "--from-backup", "b", "--backup-url", "s3://b@r/?backingImage=x"
    )
    assert result.returncode == 2
    assert "give --backup-url or --from-backup, not both" in result.stderr
    result = cluster.cli("restore", "x", "--apply")
    assert result.returncode == 2
    assert "Missing option '--backup-url'" in result.stderr
    assert cluster.server.requests == []


def test_preflight_of_a_restore_uses_the_live_targets(cluster: Cluster):
    result = cluster.cli(
        "restore", "copy1", "--backup-url", "nfs://elsewhere:/export?backingImage=bi1", "--apply"
    )
    # Longhorn 1.8+ learns the target from a BackupBackingImage with that status.url.
    assert result.returncode == 1
    assert "no BackupBackingImage in the cluster has status.url" in result.stderr
    assert cluster.requests("PATCH", IMAGES) == []


def test_longhorn_16_restores_without_a_target_name(cluster16: Cluster):
    cluster16.seed(backup("bi1", "bi1"))
    result = cluster16.cli("restore", "bi1-copy", "--from-backup", "bi1")
    assert result.returncode == 0, result.stderr
    params = yaml.safe_load(result.stdout)["spec"]["sourceParameters"]
    assert params == {"backup-url": f"{TARGET_URL}?backingImage=bi1"}
