"""`backup NAME --apply [--wait]`: preflight, server-side apply, progress, fail fast."""

from __future__ import annotations

from collections.abc import Mapping

import yaml

from tests.plugin_cluster.conftest import (
    NS,
    TARGET_URL,
    Cluster,
    Controller,
    backing_image,
    backup,
    backup_target,
)

PLURAL = "backupbackingimages"
URL = f"{TARGET_URL}?backingImage=bi1"


def play_backup(cluster: Cluster, *updates: Mapping[str, object]) -> Controller:
    """Longhorn's backup controller: once the CLI watches, report each status in turn."""

    def script() -> None:
        cluster.wait_for_watches(PLURAL, 1)
        for status in updates:
            cluster.server.update_status(PLURAL, NS, "bi1", dict(status))

    controller = Controller(script)
    controller.start()
    return controller


def test_apply_wait_follows_progress_through_the_watch_and_prints_the_url(cluster: Cluster):
    steps = [{"state": "InProgress", "progress": p} for p in (0, 20, 40, 60, 80, 100)]
    controller = play_backup(
        cluster, *steps, {"state": "Completed", "progress": 100, "url": URL, "checksum": "ab" * 64}
    )
    result = cluster.cli("backup", "bi1", "--apply", "--wait")
    controller.join()

    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out == [f"{PLURAL}.longhorn.io/bi1 serverside-applied", URL]
    lines = result.stderr.splitlines()
    for p in (0, 20, 40, 60, 80, 100):
        assert f"backupbackingimage/bi1: InProgress {p}%" in lines
    assert lines[-1] == "backupbackingimage/bi1: Completed 100%"
    # Progress came through the watch, started at the apply's resourceVersion.
    watches = cluster.watch_requests(PLURAL)
    assert len(watches) == 1
    assert watches[0]["fieldSelector"] == "metadata.name=bi1"
    assert watches[0]["resourceVersion"].isdigit()


def test_apply_is_a_server_side_apply_by_kubectl_longhorn_bi(cluster: Cluster):
    result = cluster.cli("backup", "bi1", "--apply", "--label", "team=storage")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{PLURAL}.longhorn.io/bi1 serverside-applied\n"
    (path, query), *_ = cluster.requests("PATCH", PLURAL)
    assert path.endswith(f"/namespaces/{NS}/{PLURAL}/bi1")
    assert query["fieldManager"] == "kubectl-longhorn-bi"
    stored = cluster.server.get(PLURAL, NS, "bi1")
    assert stored is not None
    assert stored["spec"] == {
        "userCreated": True,
        "backingImage": "bi1",
        "backupTargetName": "default",
        "labels": {"team": "storage"},
    }
    managers = {(m["manager"], m["operation"]) for m in stored["metadata"]["managedFields"]}
    assert ("kubectl-longhorn-bi", "Apply") in managers


def test_error_state_fails_at_once_with_longhorns_error(cluster: Cluster):
    controller = play_backup(
        cluster,
        {"state": "InProgress", "progress": 30},
        {"state": "Error", "progress": 30, "error": "failed to upload block: connection reset"},
    )
    result = cluster.cli("backup", "bi1", "--apply", "--wait", "--timeout", "10m")
    controller.join()
    assert result.returncode == 1
    assert (
        "error: BackupBackingImage 'bi1' failed: failed to upload block: connection reset"
        in result.stderr
    )
    assert "kubectl longhorn-bi describe bi1" in result.stderr
    assert "Traceback" not in result.stderr
    # No URL is printed for a failed backup.
    assert result.stdout.splitlines() == [f"{PLURAL}.longhorn.io/bi1 serverside-applied"]


def test_timeout_fails_with_the_last_state(cluster: Cluster):
    controller = play_backup(cluster, {"state": "InProgress", "progress": 10})
    result = cluster.cli("backup", "bi1", "--apply", "--wait", "--timeout", "2s")
    controller.join()
    assert result.returncode == 1
    assert "error: timed out after 2s waiting for BackupBackingImage 'bi1'" in result.stderr
    assert "(last: InProgress 10%)" in result.stderr


def test_preflight_refuses_a_missing_image_and_applies_nothing(cluster: Cluster):
    result = cluster.cli("backup", "bi-missing", "--apply", "--wait")
    assert result.returncode == 1
    assert "backing image 'bi-missing' does not exist in the cluster" in result.stderr
    assert "nothing was applied" in result.stderr
    assert cluster.requests("PATCH", PLURAL) == []
    assert cluster.server.get(PLURAL, NS, "bi-missing") is None


def test_preflight_refuses_an_image_without_a_ready_copy_where_the_backup_fails(cluster: Cluster):
    # Up to 1.9.1 Longhorn fails a backup of an image with no ready copy.
    cluster.seed(backing_image("bi2", state="in-progress"))
    result = cluster.cli("backup", "bi2", "--apply", "--longhorn-version", "1.8")
    assert result.returncode == 1
    assert "backing image 'bi2' has no ready copy yet" in result.stderr
    assert cluster.requests("PATCH", PLURAL) == []


def test_preflight_applies_a_backup_longhorn_will_wait_for(cluster: Cluster):
    # From 1.9.2 Longhorn waits for a ready copy: a warning, and the backup is sent.
    cluster.seed(backing_image("bi2", state="in-progress"))
    result = cluster.cli("backup", "bi2", "--apply")
    assert result.returncode == 0, result.stderr
    assert "has no ready copy yet; Longhorn waits for one" in result.stderr
    assert cluster.server.get(PLURAL, NS, "bi2") is not None


def test_preflight_refuses_an_unavailable_target(cluster: Cluster):
    # Longhorn 1.10+ refuses a backup to an unavailable target (backupbackingimage validator).
    cluster.seed(backup_target("offsite", "nfs://nas:/export", available=False))
    result = cluster.cli("backup", "bi1", "--apply", "--backup-target", "offsite")
    assert result.returncode == 1
    assert "backup target 'offsite' (nfs://nas:/export) is not available" in result.stderr
    assert cluster.requests("PATCH", PLURAL) == []


def test_an_unknown_target_is_a_warning_since_longhorn_uses_default(cluster: Cluster):
    # Longhorn's mutator replaces a backupTargetName that does not exist with "default".
    result = cluster.cli("backup", "bi1", "--apply", "--backup-target", "nowhere")
    assert result.returncode == 0, result.stderr
    assert "backup target 'nowhere' does not exist in the cluster" in result.stderr
    assert "backs up to the 'default' target instead" in result.stderr


def test_preflight_refuses_a_second_backup_of_the_image_on_the_target(cluster: Cluster):
    cluster.seed(backup("bi1-3f2a9c1d", "bi1", user_created=False))
    result = cluster.cli("backup", "bi1-again", "--backing-image", "bi1", "--apply")
    assert result.returncode == 1
    assert "backup 'bi1-3f2a9c1d' already backs up 'bi1' to target 'default'" in result.stderr
    assert cluster.requests("PATCH", PLURAL) == []


def test_a_rule_broken_by_the_flags_is_a_usage_error_before_any_cluster_fact(
    cluster16: Cluster,
):
    # A backup label with an empty value fails the backup, whatever the cluster holds.
    result = cluster16.cli("backup", "bi1", "--label", "usecase=", "--apply")
    assert result.returncode == 2
    assert "error:" in result.stderr and "empty value" in result.stderr
    assert cluster16.requests("GET", "backupbackingimages") == []
    assert cluster16.requests("PATCH", "backupbackingimages") == []


def test_version_is_detected_from_the_crds_and_shapes_the_manifest(cluster16: Cluster):
    result = cluster16.cli("backup", "bi1", "--dry-run=client")
    assert result.returncode == 0, result.stderr
    # 1.6 has neither spec.backingImage nor spec.backupTargetName.
    assert yaml.safe_load(result.stdout)["spec"] == {"userCreated": True}
    crd_gets = cluster16.requests("GET", "customresourcedefinitions")
    assert crd_gets, "the version was not read from the cluster"


def test_dry_run_server_sends_dry_run_all_and_stores_nothing(cluster: Cluster):
    result = cluster.cli("backup", "bi1", "--dry-run=server", "-o", "json")
    assert result.returncode == 0, result.stderr
    (_, query), *_ = cluster.requests("PATCH", PLURAL)
    assert query["dryRun"] == "All"
    assert '"kind": "BackupBackingImage"' in result.stdout
    assert cluster.server.get(PLURAL, NS, "bi1") is None


def test_dry_run_client_checks_the_cluster_and_sends_nothing(cluster: Cluster):
    result = cluster.cli("backup", "bi1", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["metadata"]["name"] == "bi1"
    assert cluster.requests("PATCH", PLURAL) == []
    assert cluster.requests("GET", "backuptargets"), "no preflight against the cluster"


def test_wait_and_dry_run_do_not_mix(cluster: Cluster):
    result = cluster.cli("backup", "bi1", "--dry-run=server", "--wait")
    assert result.returncode == 2
    assert "--wait cannot follow a --dry-run" in result.stderr
    result = cluster.cli("backup", "bi1", "--wait")
    assert result.returncode == 2
    assert "add --apply" in result.stderr
    assert cluster.server.requests == []


def test_longhorn_16_backup_waits_to_completion_in_another_namespace(tmp_path):
    from tests.fakekube import FakeKubeServer, crd_file, volume_crd_file, write_kubeconfig

    with FakeKubeServer(
        crds=(crd_file("1.6"), volume_crd_file("1.6")), namespace="storage"
    ) as server:
        kubeconfig = write_kubeconfig(tmp_path / "kc", server.url, namespace="storage")
        cluster = Cluster(server, kubeconfig)
        setting = {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "Setting",
            "metadata": {"name": "backup-target", "namespace": "storage"},
            "value": TARGET_URL,
        }
        image = backing_image("bi1")
        image["metadata"]["namespace"] = "storage"
        cluster.seed(setting, image)

        def script() -> None:
            cluster.wait_for_watches(PLURAL, 1)
            server.update_status(PLURAL, "storage", "bi1", {"state": "InProgress", "progress": 50})
            server.update_status(
                PLURAL, "storage", "bi1", {"state": "Completed", "progress": 100, "url": URL}
            )

        controller = Controller(script)
        controller.start()
        result = cluster.cli("backup", "bi1", "-n", "storage", "--apply", "--wait")
        controller.join()
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines()[-1] == URL
        stored = server.get(PLURAL, "storage", "bi1")
        assert stored is not None
        assert stored["spec"] == {"userCreated": True}
        assert stored["metadata"]["namespace"] == "storage"
