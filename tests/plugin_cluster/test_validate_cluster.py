"""`validate --cluster`: the files' facts plus the live facts of the cluster."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.plugin_cluster.conftest import NS, Cluster, backup
from tests.support import run_cli


def write(path: Path, *docs: object) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


def backup_doc(name: str, image: str) -> dict[str, object]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackupBackingImage",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"userCreated": True, "backingImage": image, "backupTargetName": "default"},
    }


def test_an_image_missing_from_the_files_is_found_in_the_cluster(cluster: Cluster, tmp_path):
    other_image = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackingImage",
        "metadata": {"name": "bi-other", "namespace": NS},
        "spec": {
            "sourceType": "download",
            "checksum": "cd" * 64,
            "sourceParameters": {"url": "https://images.example.com/other.qcow2"},
        },
    }
    manifest = write(tmp_path / "backup.yaml", other_image, backup_doc("bi1", "bi1"))
    offline = run_cli("validate", str(manifest), "--strict", "-o", "json")
    # Offline, bi1 is only missing from the files: a warning, which --strict fails.
    assert offline.returncode == 1
    results = json.loads(offline.stdout)["results"]
    assert [(r["rule"], r["severity"]) for r in results] == [("LHB402", "warning")]
    live = cluster.cli("validate", str(manifest), "--strict", "--cluster")
    assert live.returncode == 0, live.stdout + live.stderr


def test_the_cluster_turns_unknowns_into_errors(cluster: Cluster, tmp_path):
    cluster.seed(backup("bi1-3f2a9c1d", "bi1", user_created=False))
    manifest = write(
        tmp_path / "backups.yaml", backup_doc("gone", "bi-gone"), backup_doc("again", "bi1")
    )
    result = cluster.cli("validate", str(manifest), "--cluster", "-o", "json")
    assert result.returncode == 1
    found = {(r["name"], r["rule"], r["severity"]) for r in json.loads(result.stdout)["results"]}
    assert ("gone", "LHB402", "error") in found  # no such image in the cluster
    assert ("again", "LHB403", "error") in found  # the image has a backup on that target


def test_a_restore_url_on_an_unconfigured_store_fails_with_the_cluster(cluster: Cluster, tmp_path):
    restore = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackingImage",
        "metadata": {"name": "bi1-copy", "namespace": NS},
        "spec": {
            "sourceType": "restore",
            "checksum": "ab" * 64,
            "sourceParameters": {"backup-url": "nfs://nas:/other?backingImage=bi1"},
        },
    }
    manifest = write(tmp_path / "restore.yaml", restore)
    result = cluster.cli("validate", str(manifest), "--cluster")
    assert result.returncode == 1
    assert "no BackupBackingImage in the cluster has status.url" in result.stdout


def test_auto_version_needs_the_cluster(tmp_path):
    manifest = write(tmp_path / "backup.yaml", backup_doc("bi1", "bi1"))
    result = run_cli("validate", str(manifest), "--longhorn-version", "auto")
    assert result.returncode == 2
    assert "--longhorn-version auto reads the cluster's CRDs: add --cluster" in result.stderr


def test_an_unreadable_cluster_is_an_error_not_a_pass(tmp_path):
    manifest = write(tmp_path / "backup.yaml", backup_doc("bi1", "bi1"))
    result = run_cli("validate", str(manifest), "--cluster", "--kubeconfig", str(tmp_path / "no"))
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert result.stdout == ""


def export_doc(name: str, volume: str) -> dict[str, object]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackingImage",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "sourceType": "export-from-volume",
            "sourceParameters": {"volume-name": volume, "export-type": "qcow2"},
        },
    }


def volume_doc(name: str, robustness: str = "healthy") -> dict[str, object]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Volume",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"dataEngine": "v1", "size": "1073741824"},
        "status": {"robustness": robustness, "currentImage": "longhornio/longhorn-engine:v1.12.1"},
    }


def test_an_export_meets_the_cluster_s_volumes(cluster: Cluster, tmp_path):
    cluster.seed(volume_doc("vol-ok"), volume_doc("vol-faulted", "faulted"))
    manifest = write(
        tmp_path / "exports.yaml",
        export_doc("from-ok", "vol-ok"),
        export_doc("from-faulted", "vol-faulted"),
        export_doc("from-gone", "vol-gone"),
    )
    result = cluster.cli("validate", str(manifest), "--cluster", "-o", "json")
    assert result.returncode == 1
    found = {(r["name"], r["rule"], r["severity"]) for r in json.loads(result.stdout)["results"]}
    assert found == {("from-faulted", "LHB408", "error"), ("from-gone", "LHB408", "error")}


def test_volumes_rbac_denied_leaves_the_export_unchecked_not_failed(cluster: Cluster, tmp_path):
    """Without `list` on volumes the command still runs: a volume given only in the files is
    not "known absent" (volumes stay unknown in the cluster's facts)."""
    cluster.server.forbid("list", "volumes")
    manifest = write(
        tmp_path / "export.yaml", volume_doc("vol-new"), export_doc("from-new", "vol-new")
    )
    result = cluster.cli("validate", str(manifest), "--cluster", "--strict", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    gone = write(tmp_path / "gone.yaml", export_doc("from-gone", "vol-gone"))
    result = cluster.cli("validate", str(gone), "--cluster", "-o", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads(result.stdout)["results"] == []
