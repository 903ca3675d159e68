"""API errors and a lost API server: one clear message, the server's own words, exit 1."""

from __future__ import annotations

import socket
import threading

from tests.fakekube import FakeKubeServer, write_kubeconfig
from tests.plugin_cluster.conftest import NS, Cluster, Controller
from tests.plugin_cluster.proxy import Relay
from tests.support import run_cli

PLURAL = "backupbackingimages"
RBAC_PATCH = (
    'backupbackingimages.longhorn.io "bi1" is forbidden: User '
    '"system:serviceaccount:default:test" cannot patch resource "backupbackingimages" in API '
    'group "longhorn.io" in the namespace "longhorn-system"'
)


def test_403_on_apply_keeps_the_rbac_message_and_says_what_to_ask_for(cluster: Cluster):
    cluster.server.forbid("patch", PLURAL)
    result = cluster.cli("backup", "bi1", "--apply")
    assert result.returncode == 1
    assert f"error: forbidden: {RBAC_PATCH}" in result.stderr
    assert (
        "hint: ask for RBAC permission to patch and create backupbackingimages.longhorn.io in "
        "namespace 'longhorn-system'; check with: kubectl auth can-i patch "
        "backupbackingimages.longhorn.io -n longhorn-system" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_403_on_the_preflight_list_names_the_resource(cluster: Cluster):
    cluster.server.forbid("list", "backuptargets")
    result = cluster.cli("backup", "bi1", "--apply")
    assert result.returncode == 1
    assert (
        'backuptargets.longhorn.io is forbidden: User "system:serviceaccount:default:test" '
        'cannot list resource "backuptargets"' in result.stderr
    )
    assert "kubectl auth can-i list backuptargets.longhorn.io -n longhorn-system" in result.stderr
    assert cluster.requests("PATCH", PLURAL) == []


def test_403_on_version_detection_says_how_to_do_without_it(cluster: Cluster):
    cluster.server.forbid("get", "customresourcedefinitions")
    result = cluster.cli("list")  # list needs no version
    assert result.returncode == 0, result.stderr
    result = cluster.cli("backup", "bi1", "--apply")
    assert result.returncode == 1
    assert (
        "error: cannot detect the Longhorn version: forbidden: customresourcedefinitions"
        '.apiextensions.k8s.io "backupbackingimages.longhorn.io" is forbidden' in result.stderr
    )
    assert "give --longhorn-version (e.g. 1.12)" in result.stderr
    assert (
        "kubectl auth can-i get customresourcedefinitions.apiextensions.k8s.io\n" in result.stderr
    )
    result = cluster.cli("backup", "bi1", "--apply", "--longhorn-version", "1.12")
    assert result.returncode == 0, result.stderr


def test_404_names_the_object_and_the_namespace(cluster: Cluster):
    result = cluster.cli("describe", "no-such-backup")
    assert result.returncode == 1
    assert (
        "error: BackupBackingImage 'no-such-backup' not found in namespace 'longhorn-system'"
        in result.stderr
    )
    result = cluster.cli("restore", "bi9", "--from-backup", "no-such-backup", "--apply")
    assert result.returncode == 1
    assert "--from-backup: backup 'no-such-backup' not found" in result.stderr
    assert "kubectl longhorn-bi list -n longhorn-system" in result.stderr


def test_a_cluster_without_longhorn_says_so(tmp_path):
    with FakeKubeServer() as bare:  # no CRDs at all
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", bare.url)
        listed = run_cli("list", "--kubeconfig", str(kubeconfig))
        applied = run_cli("backup", "bi1", "--apply", "--kubeconfig", str(kubeconfig))
    assert listed.returncode == 1
    assert "does not serve backupbackingimages.longhorn.io: Longhorn's CRDs are not installed" in (
        listed.stderr
    )
    assert applied.returncode == 1
    assert "Longhorn's CRDs are not installed (no backingimages.longhorn.io)" in applied.stderr


def test_409_conflict_suggests_force_conflicts_which_is_sent(cluster: Cluster):
    why = (
        'Apply failed with 1 conflict: conflict with "kubectl-edit" using longhorn.io/v1beta2: '
        ".spec.labels.team"
    )
    cluster.server.fail("patch", PLURAL, 409, message=why)
    result = cluster.cli("backup", "bi1", "--apply", "--label", "team=storage")
    assert result.returncode == 1
    assert f"error: conflict on BackupBackingImage 'bi1': {why}" in result.stderr
    assert "re-run with --force-conflicts" in result.stderr

    result = cluster.cli("backup", "bi1", "--apply", "--label", "team=storage", "--force-conflicts")
    assert result.returncode == 0, result.stderr
    (_, query), *_ = cluster.requests("PATCH", PLURAL)[-1:]
    assert query["force"] == "true"


def test_an_api_server_that_goes_away_mid_wait_fails_with_the_last_state(cluster: Cluster):
    def script() -> None:
        cluster.wait_for_watches(PLURAL, 1)
        cluster.server.update_status(PLURAL, NS, "bi1", {"state": "InProgress", "progress": 40})
        cluster.server.stop()  # open watch cut without its last chunk, then connection refused

    controller = Controller(script)
    controller.start()
    # Retry an unreachable API server for 1 s rather than the default 30 s.
    result = cluster.cli(
        "backup",
        "bi1",
        "--apply",
        "--wait",
        "--timeout",
        "10m",
        env={"LONGHORN_BI_WAIT_RETRY": "1"},
    )
    controller.join()
    assert result.returncode == 1
    assert f"error: cannot reach the API server at {cluster.server_url}" in result.stderr
    assert "lost while waiting for BackupBackingImage 'bi1'" in result.stderr
    assert "Traceback" not in result.stderr


def test_connection_refused_names_the_server(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"http://127.0.0.1:{port}")
    result = run_cli("list", "--kubeconfig", str(kubeconfig))
    assert result.returncode == 1
    assert (
        f"error: cannot reach the API server at http://127.0.0.1:{port}: connection refused"
        in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_watch_410_and_dropped_watches_are_survived(cluster: Cluster):
    def script() -> None:
        cluster.wait_for_watches(PLURAL, 1)
        cluster.server.update_status(PLURAL, NS, "bi1", {"state": "InProgress", "progress": 10})
        # History gone and the watch cut: the CLI gets the object afresh (a re-watch from
        # its old resourceVersion would be refused) and watches from there.
        cluster.server.compact()
        cluster.server.drop_watches()
        cluster.wait_for_watches(PLURAL, 2)
        cluster.server.update_status(PLURAL, NS, "bi1", {"state": "InProgress", "progress": 70})
        cluster.server.drop_watches()
        cluster.wait_for_watches(PLURAL, 3)
        cluster.server.update_status(
            PLURAL,
            NS,
            "bi1",
            {
                "state": "Completed",
                "progress": 100,
                "url": "s3://backups@us-east-1/?backingImage=bi1",
            },
        )

    controller = Controller(script)
    controller.start()
    result = cluster.cli("backup", "bi1", "--apply", "--wait")
    controller.join()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "s3://backups@us-east-1/?backingImage=bi1"
    assert len(cluster.watch_requests(PLURAL)) >= 3
    gets = [p for p, _ in cluster.requests("GET", PLURAL) if p.endswith("/bi1")]
    assert len(gets) >= 2, "no fresh get after a dropped watch"


def test_a_short_outage_of_the_api_server_is_ridden_out(cluster: Cluster, tmp_path):
    relay = Relay(int(cluster.server_url.rsplit(":", 1)[1]))
    relay.up()
    kubeconfig = write_kubeconfig(tmp_path / "via-relay", relay.url, token=cluster.server.token)
    url = "s3://backups@us-east-1/?backingImage=bi1"
    outage_over = threading.Event()

    def script() -> None:
        cluster.wait_for_watches(PLURAL, 1)
        cluster.server.update_status(PLURAL, NS, "bi1", {"state": "InProgress", "progress": 20})
        relay.down()
        # Longhorn finishes while the CLI cannot see it; the CLI keeps retrying meanwhile.
        cluster.server.update_status(
            PLURAL, NS, "bi1", {"state": "Completed", "progress": 100, "url": url}
        )
        outage_over.wait(1.0)  # let the outage last a moment (no assertion on time)
        relay.up()

    controller = Controller(script)
    controller.start()
    try:
        result = run_cli("backup", "bi1", "--apply", "--wait", "--kubeconfig", str(kubeconfig))
    finally:
        controller.join()
        relay.down()
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == url
    # The CLI had only watched before the outage; it got the object afresh after it.
    gets = [p for p, _ in cluster.requests("GET", PLURAL) if p.endswith("/bi1")]
    assert gets, "the CLI did not come back after the outage"
