"""apply, wait, list, describe and restore --from-backup on a real API server."""

from __future__ import annotations

import json
import subprocess
import threading

import pytest
import yaml

from tests.e2e.conftest import RealCluster

pytestmark = pytest.mark.e2e

TARGET_URL = "s3://e2e-bucket@us-east-1/"
CHECKSUM = "ab" * 64


@pytest.fixture(scope="module")
def seeded(real_cluster: RealCluster) -> RealCluster:
    ns = real_cluster.namespace
    objects = [
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackupTarget",
            "metadata": {"name": "default", "namespace": ns},
            "spec": {"backupTargetURL": TARGET_URL, "pollInterval": "300s"},
        },
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackingImage",
            "metadata": {"name": "bi1", "namespace": ns},
            "spec": {
                "sourceType": "download",
                "sourceParameters": {"url": "https://images.example.com/bi1.qcow2"},
            },
        },
    ]
    real_cluster.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump_all(objects))
    real_cluster.set_status("backuptargets.longhorn.io", "default", '{"available": true}')
    real_cluster.set_status(
        "backingimages.longhorn.io",
        "bi1",
        json.dumps(
            {
                "checksum": CHECKSUM,
                "diskFileStatusMap": {"disk-1": {"state": "ready", "progress": 100}},
            }
        ),
    )
    return real_cluster


def test_preflight_refuses_a_missing_image(seeded: RealCluster):
    result = seeded.plugin("backup", "no-such-image", "--apply")
    assert result.returncode == 1
    assert "backing image 'no-such-image' does not exist in the cluster" in result.stderr


def test_apply_wait_list_describe_and_restore(seeded: RealCluster):
    ns = seeded.namespace
    plugin = subprocess.Popen(
        [
            "kubectl",
            "longhorn-bi",
            "backup",
            "bi1",
            "--apply",
            "--wait",
            "--timeout",
            "90s",
            "-n",
            ns,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=seeded.env,
    )
    applied = plugin.stdout.readline() if plugin.stdout else ""
    assert applied == "backupbackingimages.longhorn.io/bi1 serverside-applied\n"
    url = f"{TARGET_URL}?backingImage=bi1"
    for progress in (30, 70):
        seeded.set_status(
            "backupbackingimages.longhorn.io",
            "bi1",
            json.dumps({"state": "InProgress", "progress": progress}),
        )
    seeded.set_status(
        "backupbackingimages.longhorn.io",
        "bi1",
        json.dumps(
            {
                "state": "Completed",
                "progress": 100,
                "url": url,
                "checksum": CHECKSUM,
                "size": 4194304,
            }
        ),
    )
    out, err = plugin.communicate(timeout=100)
    assert plugin.returncode == 0, err
    assert out.strip() == url
    assert "backupbackingimage/bi1: Completed 100%" in err

    listed = seeded.plugin("list")
    assert listed.returncode == 0, listed.stderr
    row = listed.stdout.splitlines()[1].split()
    assert row[:6] == ["bi1", "bi1", "default", "Completed", "100%", "4Mi"]

    described = seeded.plugin("describe", "bi1")
    assert described.returncode == 0, described.stderr
    assert f"  URL:        {TARGET_URL}" in described.stdout
    assert (
        f"kubectl longhorn-bi restore bi1 --from-backup bi1 -n {ns} --apply --wait"
        in described.stdout
    )

    restore = seeded.plugin(
        "restore", "bi1-copy", "--from-backup", "bi1", "--dry-run=server", "-o", "json"
    )
    assert restore.returncode == 0, restore.stderr
    spec = json.loads(restore.stdout)["spec"]
    assert spec["sourceParameters"]["backup-url"] == url
    assert spec["checksum"] == CHECKSUM


def test_error_state_fails_fast(seeded: RealCluster):
    ns = seeded.namespace
    seeded.kubectl(
        "delete", "backupbackingimages.longhorn.io", "bi1", "-n", ns, "--ignore-not-found"
    )
    done = threading.Event()

    def fail_when_created() -> None:
        # Poll rather than `kubectl wait --for=create`, which needs kubectl 1.31+.
        for _ in range(120):
            found = seeded.kubectl(
                "get", "backupbackingimages.longhorn.io", "bi1", "-n", ns, check=False
            )
            if found.returncode == 0:
                break
            done.wait(0.5)
        seeded.set_status(
            "backupbackingimages.longhorn.io",
            "bi1",
            '{"state": "Error", "error": "e2e: target unreachable"}',
        )
        done.set()

    thread = threading.Thread(target=fail_when_created, daemon=True)
    thread.start()
    result = seeded.plugin("backup", "bi1", "--apply", "--wait", "--timeout", "90s")
    thread.join(100)
    assert done.is_set()
    assert result.returncode == 1
    assert "failed: e2e: target unreachable" in result.stderr
