"""`verify --in-cluster`: the Indexed Job, its RBAC, its workers and the followed summary.

A thread plays the Job controller and the kubelet: it writes the plan's ConfigMap into a
folder as the kubelet mounts it, runs each index's pod command there (the real CLI, its shard
from JOB_COMPLETION_INDEX) and then writes the Job's status as Kubernetes would.
"""

from __future__ import annotations

import time
from pathlib import Path
from subprocess import CompletedProcess
from typing import Any

from longhorn_bi.engine.scrub.outcome import VERIFY_RESULT
from longhorn_bi.engine.scrub.plan import plan_text
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


def _mount_plan(cluster: Cluster, job: dict[str, Any], folder: Path) -> list[str]:
    """The ConfigMap volume's files in `folder`, as the kubelet mounts them; the command
    with the mount path turned into `folder`."""
    pod = job["spec"]["template"]["spec"]
    (mount,) = pod["containers"][0]["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    plan = cluster.server.get("configmaps", NS, volume["configMap"]["name"])
    assert plan is not None, "the Job's plan ConfigMap was not created before it"
    folder.mkdir(exist_ok=True)
    for key, text in plan["data"].items():
        (folder / key).write_text(text)
    command: list[str] = pod["containers"][0]["command"]
    return [str(folder) if arg == mount["mountPath"] else arg for arg in command]


def _run_pod(cluster: Cluster, command: list[str], index: int) -> str:
    assert command[0] == "kubectl-longhorn_bi"
    env = {"JOB_COMPLETION_INDEX": str(index)}
    done = run_cli(*command[1:], "--kubeconfig", str(cluster.kubeconfig), env=env)
    assert done.returncode in (0, 1), done.stderr
    return done.stdout


def _run_pods(
    cluster: Cluster,
    job: dict[str, Any],
    folder: Path,
    fail_index: int | None = None,
    shards: int = SHARDS,
) -> list[str]:
    """Each index's container command, as its pod would run it; the outputs."""
    command = _mount_plan(cluster, job, folder)
    outputs = []
    for index in range(job["spec"]["completions"]):
        if index == fail_index:
            continue
        outputs.append(_run_pod(cluster, command, index))
    status: dict[str, Any] = {
        "completedIndexes": ",".join(str(i) for i in range(shards) if i != fail_index),
        "conditions": [{"type": "Complete" if fail_index is None else "Failed", "status": "True"}],
    }
    if fail_index is not None:
        status["failedIndexes"] = str(fail_index)
    cluster.server.update_status("jobs", NS, job["metadata"]["name"], status)
    return outputs


def _names(output: str) -> list[str]:
    return [line.split()[1].rstrip(":") for line in output.splitlines()]


def _seed(
    cluster: Cluster, tmp_path: Path, names: list[str], blocks: dict[str, int] | None = None
) -> None:
    store = vfs_store(cluster, tmp_path)
    for seed, name in enumerate(names):
        count = (blocks or {}).get(name, 1)
        url, checksum, size = store.backup(tmp_path, name, blocks=count, seed=seed)
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
    controller = Controller(
        lambda: outputs.extend(_run_pods(cluster, _wait_for_job(cluster), tmp_path / "plan"))
    )
    controller.start()
    env = {"LONGHORN_BI_POLL": "0.05"}
    result = cluster.cli("verify", "--in-cluster", "--all", "--shards", str(SHARDS), env=env)
    controller.join()

    assert result.returncode == 1, result.stderr
    assert "FAILED  liar: failed: the backup's checksum" in result.stdout
    assert "7 backup(s): 1 failed, 6 ok" in result.stderr
    # every backup verified exactly once, split over the shards
    verified = [name for out in outputs for name in _names(out)]
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
    command = pod["containers"][0]["command"]
    assert command[command.index("--plan-dir") + 1] == "/plan"
    assert "--shards" not in command and "--all" not in command  # the plan names the backups

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
        _run_pods(cluster, _wait_for_job(cluster), tmp_path / "plan", fail_index=1)

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
    controller = Controller(
        lambda: outputs.extend(_run_pods(cluster, _wait_for_job(cluster), tmp_path / "plan"))
    )
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
    verified = [name for out in outputs for name in _names(out)]
    assert 0 < len(verified) < len(names) and len(set(verified)) == len(verified)
    assert f"{len(verified)} backup(s): {len(verified)} ok" in result.stderr
    assert {n for n in names if VERIFY_RESULT in notes_of(cluster.server, n)} == set(verified)


def test_the_plan_balances_the_shards_and_is_owned_by_the_job(
    cluster: Cluster, tmp_path: Path
) -> None:
    # 15 blocks over 3 shards: longest first gives 5 blocks each (a hash split need not)
    blocks = {"bi-0": 4, "bi-1": 3, "bi-2": 2, "bi-3": 2, "bi-4": 1, "bi-5": 1, "bi-6": 1}
    blocks["bi-7"] = 1
    _seed(cluster, tmp_path, list(blocks), blocks)
    folder = tmp_path / "plan"
    outputs: list[str] = []
    retried: list[str] = []

    def pods() -> None:
        job = _wait_for_job(cluster)
        command = _mount_plan(cluster, job, folder)
        outputs.extend(_run_pod(cluster, command, i) for i in range(SHARDS))
        # A backup made meanwhile changes no index's list: a retry verifies what it had.
        cluster.seed(backup_object("bi-new", "vfs:///gone?backingImage=bi-new", "0" * 128))
        retried.append(_run_pod(cluster, command, 1))
        status = {"completedIndexes": "0-2", "conditions": [{"type": "Complete", "status": "True"}]}
        cluster.server.update_status("jobs", NS, job["metadata"]["name"], status)

    controller = Controller(pods)
    controller.start()
    result = cluster.cli(
        "verify", "--in-cluster", "--all", "--shards", str(SHARDS), env={"LONGHORN_BI_POLL": "0.05"}
    )
    controller.join()
    assert result.returncode == 0, result.stderr
    assert "8 backup(s) (2/3/3 by shard)" in result.stderr

    per_shard = [_names(out) for out in outputs]
    assert sorted(n for names in per_shard for n in names) == sorted(blocks)  # each once
    assert [sum(blocks[n] for n in names) for names in per_shard] == [5, 5, 5]
    assert _names(retried[0]) == per_shard[1]

    (job,) = objects(cluster.server, "jobs")
    (plan,) = objects(cluster.server, "configmaps")
    assert plan["metadata"]["name"] == job["metadata"]["name"] + "-plan"
    assert plan["metadata"]["labels"] == job["metadata"]["labels"]
    assert sorted(plan["data"]) == ["0", "1", "2"]
    (owner,) = plan["metadata"]["ownerReferences"]
    assert owner == {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "name": job["metadata"]["name"],
        "uid": job["metadata"]["uid"],
    }
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "plan", "configMap": {"name": plan["metadata"]["name"]}}]
    assert pod["containers"][0]["volumeMounts"] == [
        {"name": "plan", "mountPath": "/plan", "readOnly": True}
    ]
    # the pods need no new permission: the kubelet reads the ConfigMap
    (role,) = objects(cluster.server, "roles")
    assert all("configmaps" not in r["resources"] for r in role["rules"])


def test_a_job_that_cannot_be_created_leaves_no_plan(cluster: Cluster, tmp_path: Path) -> None:
    _seed(cluster, tmp_path, ["bi-0", "bi-1"])
    cluster.server.fail("create", "jobs", 422, message="Job.batch is invalid: injected")
    result = cluster.cli("verify", "--in-cluster", "--all", "--shards", "2")
    assert result.returncode != 0
    assert "injected" in result.stderr
    assert objects(cluster.server, "configmaps") == []
    assert objects(cluster.server, "jobs") == []


def _worker(cluster: Cluster, folder: Path, index: int, *args: str) -> CompletedProcess[str]:
    return cluster.cli(
        "verify", "--plan-dir", str(folder), *args, env={"JOB_COMPLETION_INDEX": str(index)}
    )


def test_a_worker_refuses_a_missing_or_empty_plan_file(cluster: Cluster, tmp_path: Path) -> None:
    _seed(cluster, tmp_path, ["bi-0"])
    folder = tmp_path / "plan"
    folder.mkdir()
    (folder / "0").write_text(plan_text(0, 2, ["bi-0"]))
    (folder / "1").write_text("")

    missing = _worker(cluster, folder, 2)
    assert missing.returncode == 2
    assert f"no plan for shard 2: {folder / '2'} does not exist" in missing.stderr
    empty = _worker(cluster, folder, 1)
    assert empty.returncode == 2
    assert f"the plan file {folder / '1'} is empty" in empty.stderr
    assert VERIFY_RESULT not in notes_of(cluster.server, "bi-0")

    both = _worker(cluster, folder, 0, "--all")
    assert both.returncode == 2
    assert "--plan-dir names the backups itself" in both.stderr


def test_an_empty_shard_is_a_no_op_and_a_deleted_backup_is_skipped(
    cluster: Cluster, tmp_path: Path
) -> None:
    _seed(cluster, tmp_path, ["bi-0"])
    folder = tmp_path / "plan"
    folder.mkdir()
    (folder / "0").write_text(plan_text(0, 2, ["bi-0", "bi-gone"]))
    (folder / "1").write_text(plan_text(1, 2, []))

    idle = _worker(cluster, folder, 1)
    assert idle.returncode == 0, idle.stderr
    assert "0 backup(s)" in idle.stderr
    done = _worker(cluster, folder, 0)
    assert done.returncode == 0, done.stderr
    assert "SKIPPED bi-gone: deleted since the plan was made" in done.stdout
    assert notes_of(cluster.server, "bi-0")[VERIFY_RESULT] == "ok"


def test_a_plan_the_job_cannot_own_is_named_and_the_run_goes_on(
    cluster: Cluster, tmp_path: Path
) -> None:
    _seed(cluster, tmp_path, ["bi-0", "bi-1"])
    cluster.server.forbid("patch", "configmaps", times=1)

    def pods() -> None:
        _run_pods(cluster, _wait_for_job(cluster), tmp_path / "plan", shards=2)

    controller = Controller(pods)
    controller.start()
    result = cluster.cli(
        "verify", "--in-cluster", "--all", "--shards", "2", env={"LONGHORN_BI_POLL": "0.05"}
    )
    controller.join()
    assert result.returncode == 0, result.stderr
    (plan,) = objects(cluster.server, "configmaps")
    name = plan["metadata"]["name"]
    assert "ownerReferences" not in plan["metadata"]
    assert f"warning: configmap/{name} is not owned by the Job" in result.stderr
    assert f"kubectl delete configmap {name} -n {NS}" in result.stderr
    assert "2 backup(s): 2 ok" in result.stderr
