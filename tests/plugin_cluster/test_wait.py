"""plugin/wait.py in process: judges, the 410 path, and the progress bar on a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios
import threading
from typing import Any

import pytest

from longhorn_bi.engine.errors import WaitFailed
from longhorn_bi.plugin.kube import Connection, Kube
from longhorn_bi.plugin.wait import Follower, Snapshot, backup_judge, restore_judge
from tests.plugin_cluster.conftest import NS, Cluster, Controller
from tests.support import PLUGIN

PLURAL = "backupbackingimages"


def test_backup_judge_reads_state_progress_and_error() -> None:
    assert backup_judge({}) == Snapshot("Pending")
    assert backup_judge({"status": {"state": "InProgress", "progress": 42}}) == Snapshot(
        "InProgress", 42
    )
    assert backup_judge({"status": {"state": "Completed", "progress": 100}}).done
    failed = backup_judge({"status": {"state": "Error", "error": "no space left"}})
    assert failed.error == "no space left" and not failed.done
    assert backup_judge({"status": {"state": "Error"}}).error == "Longhorn reported state Error"


def test_restore_judge_follows_the_first_copy() -> None:
    def image(**disks: Any) -> dict[str, Any]:
        return {"status": {"diskFileStatusMap": disks}}

    assert restore_judge({}) == Snapshot("pending")
    assert restore_judge(image(d1={"state": "in-progress", "progress": 35})) == Snapshot(
        "in-progress", 35
    )
    assert restore_judge(image(d1={"state": "failed"}, d2={"state": "ready"})).done
    failed = restore_judge(image(d1={"state": "failed", "message": "checksum mismatch"}))
    assert failed.error == "checksum mismatch"
    assert restore_judge(image(d1={"state": "failed-and-cleanup"})).error == (
        "the first copy is failed-and-cleanup"
    )


def test_a_watch_from_a_compacted_resource_version_gets_410_then_recovers(cluster: Cluster):
    cluster.server.put(
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackupBackingImage",
            "metadata": {"name": "bi1", "namespace": NS},
            "spec": {"userCreated": True, "backingImage": "bi1"},
        }
    )
    stale = cluster.server.get(PLURAL, NS, "bi1")
    assert stale is not None
    cluster.server.update_status(PLURAL, NS, "bi1", {"state": "InProgress", "progress": 5})
    cluster.server.compact()
    pauses: list[float] = []

    def script() -> None:
        cluster.wait_for_watches(PLURAL, 2)  # the refused one, then the one after a fresh get
        cluster.server.update_status(PLURAL, NS, "bi1", {"state": "Completed", "progress": 100})

    controller = Controller(script)
    controller.start()
    kube = Kube(Connection(kubeconfig=str(cluster.kubeconfig), namespace=NS))
    follower = Follower(kube, PLURAL, "bi1", backup_judge, timeout=60, sleep=pauses.append)
    final = follower.run(stale)
    controller.join()
    assert final["status"]["state"] == "Completed"
    first, second = cluster.watch_requests(PLURAL)[:2]
    assert first["resourceVersion"] == stale["metadata"]["resourceVersion"]
    assert int(second["resourceVersion"]) > int(first["resourceVersion"])
    assert pauses == [0.25], "one backoff pause after the 410"


def test_a_deleted_object_ends_the_wait(cluster: Cluster):
    def script() -> None:
        cluster.wait_for_watches(PLURAL, 1)
        cluster.server.delete(PLURAL, NS, "bi1")

    controller = Controller(script)
    controller.start()
    result = cluster.cli("backup", "bi1", "--apply", "--wait")
    controller.join()
    assert result.returncode == 1
    assert "error: BackupBackingImage 'bi1' was deleted while waiting for it" in result.stderr


def test_a_terminal_gets_a_progress_bar(cluster: Cluster):
    def script() -> None:
        cluster.wait_for_watches(PLURAL, 1)
        for p in (25, 50):
            cluster.server.update_status(PLURAL, NS, "bi1", {"state": "InProgress", "progress": p})
        cluster.server.update_status(
            PLURAL,
            NS,
            "bi1",
            {"state": "Completed", "progress": 100, "url": "s3://b@r/?backingImage=bi1"},
        )

    controller = Controller(script)
    controller.start()
    leader, follower = pty.openpty()
    # A terminal window of 100 x 30, as a real terminal reports its size.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    process = subprocess.Popen(
        [
            str(PLUGIN),
            "backup",
            "bi1",
            "--apply",
            "--wait",
            "--kubeconfig",
            str(cluster.kubeconfig),
        ],
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    chunks: list[bytes] = []

    def read() -> None:
        while True:
            try:
                data = os.read(leader, 4096)
            except OSError:  # EIO: the terminal's other side is closed
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    stdout, _ = process.communicate(timeout=60)
    reader.join(30)
    os.close(leader)
    controller.join()
    screen = b"".join(chunks).decode()
    assert process.returncode == 0
    assert stdout.decode().splitlines()[-1] == "s3://b@r/?backingImage=bi1"
    assert "\r" in screen  # redrawn in place
    assert "backupbackingimage/bi1: 100%|" in screen
    assert "Completed" in screen
    # A terminal gets the bar, not the plain status lines.
    assert "backupbackingimage/bi1: InProgress 25%" not in screen


@pytest.mark.parametrize("seconds", [0.0, -1.0])
def test_no_time_left_times_out_with_the_last_state(cluster: Cluster, seconds: float):
    kube = Kube(Connection(kubeconfig=str(cluster.kubeconfig), namespace=NS))
    follower = Follower(kube, PLURAL, "bi1", backup_judge, timeout=1, sleep=lambda s: None)
    follower.deadline = follower.deadline + seconds - 1 if follower.deadline else None
    with pytest.raises(WaitFailed, match=r"timed out after 1s .* \(last: InProgress 7%\)"):
        follower.run(
            {"metadata": {"name": "bi1"}, "status": {"state": "InProgress", "progress": 7}}
        )
