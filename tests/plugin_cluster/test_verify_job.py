"""`verify --in-cluster`: the Indexed Job, its RBAC, its workers and the followed summary.

A thread plays the Job controller: it runs each index's pod command (the real CLI, its
shard from JOB_COMPLETION_INDEX) and then writes the Job's status as Kubernetes would.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from longhorn_bi.engine.scrub.outcome import VERIFY_RESULT
from tests.plugin_cluster.conftest import NS, SYNC, Cluster, Controller
from tests.plugin_cluster.scrub_support import (
    backup_object,
    notes_of,
    objects,
    target_object,
    vfs_store,
)
from tests.support import run_cli

SHARDS = 3


def _wait_for_job(cluster: Cluster) -> dict[str, Any]:
    deadline = time.monotonic() + SYNC
    while not objects(cluster.server, "jobs"):
        if time.monotonic() > deadline:
            raise TimeoutError("the CLI created no Job")
        time.sleep(0.02)
    return objects(cluster.server, "jobs")[0]


def _run_pods(cluster: Cluster, job: dict[str, Any], fail_index: int | None = None) -> list[str]:
    """Each index's container command, as its pod would run it; the outputs."""
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[0] == "kubectl-longhorn_bi"
    outputs = []
    for index in range(job["spec"]["completions"]):
        if index == fail_index:
            continue
        env = {"JOB_COMPLETION_INDEX": str(index)}
        done = run_cli(*command[1:], "--kubeconfig", str(cluster.kubeconfig), env=env)
        outputs.append(done.stdout)
    status: dict[str, Any] = {
        "completedIndexes": ",".join(str(i) for i in range(SHARDS) if i != fail_index),
        "conditions": [{"type": "Complete" if fail_index is None else "Failed", "status": "True"}],
    }
    if fail_index is not None:
        status["failedIndexes"] = str(fail_index)
    cluster.server.update_status("jobs", NS, job["metadata"]["name"], status)
    return outputs


def _seed(cluster: Cluster, tmp_path: Path, names: list[str]) -> None:
    store = vfs_store(cluster, tmp_path)
    for seed, name in enumerate(names):
        url, checksum, size = store.backup(tmp_path, name, blocks=1, seed=seed)
        recorded = "f" * 128 if name == "liar" else checksum
        cluster.seed(backup_object(name, url, recorded, target="local", size=size))
    cluster.seed(
        target_object("local", store.target, secret="local-creds"),
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "local-creds"}, "data": {}},
    )


def test_in_cluster_verify_runs_an_indexed_job_and_sums_it_up(
    cluster: Cluster, tmp_path: Path
) -> None:
    names = [f"bi-{i}" for i in range(6)] + ["liar"]
    _seed(cluster, tmp_path, names)
    outputs: list[str] = []
    controller = Controller(lambda: outputs.extend(_run_pods(cluster, _wait_for_job(cluster))))
    controller.start()
    env = {"LONGHORN_BI_POLL": "0.05"}
    result = cluster.cli("verify", "--in-cluster", "--all", "--shards", str(SHARDS), env=env)
    controller.join()

    assert result.returncode == 1, result.stderr
    assert "FAILED  liar: failed: the backup's checksum" in result.stdout
    assert "7 backup(s): 1 failed, 6 ok" in result.stderr
    # every backup verified exactly once, split over the shards
    verified = [line.split()[1].rstrip(":") for out in outputs for line in out.splitlines()]
    assert sorted(verified) == sorted(names)
    assert all(notes_of(cluster.server, n)[VERIFY_RESULT] == "ok" for n in names[:-1])

    (job,) = objects(cluster.server, "jobs")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == SHARDS
    assert spec["backoffLimitPerIndex"] >= 1
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # backoffLimitPerIndex requires it
    assert pod["serviceAccountName"] == "longhorn-bi-verify"
    assert "--shards" in pod["containers"][0]["command"]

    (role,) = objects(cluster.server, "roles")
    rules = {(r["apiGroups"][0], r["resources"][0]): r for r in role["rules"]}
    assert rules[("", "secrets")]["resourceNames"] == ["local-creds"]
    assert rules[("", "secrets")]["verbs"] == ["get"]
    assert rules[("longhorn.io", "backupbackingimages")]["verbs"] == ["get", "list", "patch"]
    assert rules[("longhorn.io", "backuptargets")]["verbs"] == ["get"]
    assert all("delete" not in r["verbs"] and "*" not in r["verbs"] for r in role["rules"])
    (binding,) = objects(cluster.server, "rolebindings")
    assert binding["subjects"][0]["name"] == "longhorn-bi-verify"
    assert len(objects(cluster.server, "serviceaccounts")) == 1


def test_a_failed_shard_fails_the_run(cluster: Cluster, tmp_path: Path) -> None:
    _seed(cluster, tmp_path, [f"bi-{i}" for i in range(6)])

    def pods() -> None:
        _run_pods(cluster, _wait_for_job(cluster), fail_index=1)

    controller = Controller(pods)
    controller.start()
    env = {"LONGHORN_BI_POLL": "0.05"}
    result = cluster.cli("verify", "--in-cluster", "--all", "--shards", str(SHARDS), env=env)
    controller.join()
    assert result.returncode == 1
    assert "NOT VERIFIED" in result.stdout
    assert "the Job failed" in result.stderr


def test_every_pod_samples_with_the_plugins_seed(cluster: Cluster, tmp_path: Path) -> None:
    names = [f"bi-{i}" for i in range(8)]
    _seed(cluster, tmp_path, names)
    outputs: list[str] = []
    controller = Controller(lambda: outputs.extend(_run_pods(cluster, _wait_for_job(cluster))))
    controller.start()
    args = ("verify", "--in-cluster", "--all", "--shards", str(SHARDS))
    sampled = ("--sample", "0.5", "--sample-backups", "0.5")
    result = cluster.cli(*args, *sampled, env={"LONGHORN_BI_POLL": "0.05"})
    controller.join()

    assert result.returncode == 0, result.stderr
    seed = result.stderr.split("sampling with --seed ", 1)[1].split()[0]
    (job,) = objects(cluster.server, "jobs")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[command.index("--seed") + 1] == seed
    assert command[command.index("--sample") + 1] == "0.5"
    # The pods drew the backups the plugin drew: its summary counts exactly theirs.
    verified = [line.split()[1].rstrip(":") for out in outputs for line in out.splitlines()]
    assert 0 < len(verified) < len(names) and len(set(verified)) == len(verified)
    assert f"{len(verified)} backup(s): {len(verified)} ok" in result.stderr
    assert {n for n in names if VERIFY_RESULT in notes_of(cluster.server, n)} == set(verified)
