"""`verify --in-cluster`: the same verification as an Indexed Job, followed to its summary.

The plugin lists the backups anyway, so it plans the split itself: longest processing time
first over their sizes (engine/scrub/shards.py), written into a ConfigMap `<job>-plan` (one
key per index) that the kubelet mounts read-only into every pod; each pod runs `verify
--plan-dir` on its index's list (JOB_COMPLETION_INDEX). A retried index reads the same file,
so `backoffLimitPerIndex` retries a killed pod's backups alone. The ConfigMap is owned by the
Job, so the Job's TTL removes both. The pods' service account may only read the targets,
their credential Secrets (by name) and the backups, patch the backups' annotations and
create Events (the ConfigMap needs no permission: the kubelet reads it). The chart's CronJob
has no plugin to plan for it and keeps the hash split of `verify --shards`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from longhorn_bi.engine.errors import ClusterError, ExitCode, NotFound, WaitFailed
from longhorn_bi.engine.scrub.outcome import OK, VERIFIED_AT, VERIFY_RESULT
from longhorn_bi.engine.scrub.plan import plan_data
from longhorn_bi.engine.scrub.shards import balanced_plan, check_shards
from longhorn_bi.plugin.cluster_cmds import PLURAL, target_of
from longhorn_bi.plugin.kube import Kube, format_duration
from longhorn_bi.plugin.scrub_cluster import name_of, read_target, select, stored_size

NAME = "longhorn-bi-verify"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "kubectl-longhorn-bi"}
BACKOFF_PER_INDEX = 2
TTL_AFTER_FINISHED = 24 * 3600
POLL_ENV, POLL_DEFAULT = "LONGHORN_BI_POLL", 2.0  # seconds between looks at the Job
TIMEOUT_ENV, TIMEOUT_DEFAULT = "LONGHORN_BI_VERIFY_TIMEOUT", 6 * 3600.0
PLAN_DIR = "/plan"  # where each pod finds the plan's ConfigMap, a file per index
PLAN_VOLUME = "plan"


@dataclass(frozen=True)
class JobSpec:
    backups: tuple[str, ...]
    all_: bool
    target: str | None
    fraction: float  # of each backup's blocks
    backup_fraction: float  # of the backups
    seed: str
    shards: int
    image: str
    concurrency: int


def worker_args(spec: JobSpec, namespace: str) -> list[str]:
    """The pod's command line: this plugin's `verify` of its index's planned backups (the
    backups were chosen, and sampled, by the plugin; --seed still draws the blocks)."""
    args = ["kubectl-longhorn_bi", "verify", "--plan-dir", PLAN_DIR]
    args += ["--sample", repr(spec.fraction), "--seed", spec.seed]
    args += ["--concurrency", str(spec.concurrency)]
    return [*args, "-n", namespace]


def plan_name(job: str) -> str:
    return f"{job}-plan"


def plan_object(namespace: str, job: str, plan: list[list[str]]) -> dict[str, Any]:
    meta = {"name": plan_name(job), "namespace": namespace, "labels": LABELS}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": plan_data(plan)}


def role_rules(secrets: list[str]) -> list[dict[str, Any]]:
    rules: list[dict[str, Any]] = [
        {"apiGroups": ["longhorn.io"], "resources": ["backuptargets"], "verbs": ["get"]},
        {
            "apiGroups": ["longhorn.io"],
            "resources": ["settings"],
            "resourceNames": ["backup-target-credential-secret"],
            "verbs": ["get"],
        },
        {
            "apiGroups": ["longhorn.io"],
            "resources": ["backupbackingimages"],
            "verbs": ["get", "list", "patch"],
        },
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ]
    if secrets:
        rules.append(
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": secrets,
                "verbs": ["get"],
            }
        )
    return rules


def rbac_objects(namespace: str, secrets: list[str]) -> list[dict[str, Any]]:
    meta = {"name": NAME, "namespace": namespace, "labels": LABELS}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": meta,
            "rules": role_rules(secrets),
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": NAME},
            "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}],
        },
    ]


def job_object(spec: JobSpec, namespace: str, name: str) -> dict[str, Any]:
    container = {
        "name": "verify",
        "image": spec.image,
        "command": worker_args(spec, namespace),
        "volumeMounts": [{"name": PLAN_VOLUME, "mountPath": PLAN_DIR, "readOnly": True}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {
            "requests": {"cpu": "500m", "memory": "256Mi"},
            "limits": {"memory": "512Mi"},
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": LABELS},
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.shards,
            "parallelism": spec.shards,
            "backoffLimitPerIndex": BACKOFF_PER_INDEX,
            "ttlSecondsAfterFinished": TTL_AFTER_FINISHED,
            "template": {
                "metadata": {"labels": LABELS},
                "spec": {
                    "serviceAccountName": NAME,
                    "restartPolicy": "Never",
                    "securityContext": {"seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [{"name": PLAN_VOLUME, "configMap": {"name": plan_name(name)}}],
                },
            },
        },
    }


_PATHS = {
    "ServiceAccount": ("", "serviceaccounts"),
    "Role": ("rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings"),
    "Job": ("batch/v1", "jobs"),
    "ConfigMap": ("", "configmaps"),
}


def put(kube: Kube, obj: Mapping[str, Any]) -> dict[str, Any]:
    """Create the object, or replace the one of that name."""
    group, plural = _PATHS[obj["kind"]]
    name = obj["metadata"]["name"]
    path = kube.core_path(plural, name, group)
    try:
        kube.rest("GET", path, verb="get", plural=plural, name=name)
    except NotFound:
        return kube.rest(
            "POST", kube.core_path(plural, "", group), verb="create", plural=plural, body=obj
        )
    return kube.rest("PUT", path, verb="update", plural=plural, name=name, body=obj)


def indexes(text: Any) -> set[int]:
    """The set of a Job's `completedIndexes`/`failedIndexes`, e.g. "0-2,5"."""
    found: set[int] = set()
    for part in str(text or "").split(","):
        low, _, high = part.partition("-")
        if low.strip().isdigit():
            found.update(range(int(low), int(high or low) + 1))
    return found


def _finished(job: Mapping[str, Any]) -> str:
    for condition in (job.get("status") or {}).get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return str(condition["type"])
    return ""


def follow(kube: Kube, name: str, shards: int) -> Mapping[str, Any]:
    """Poll the Job until it completes or fails, showing shards done."""
    poll = float(os.environ.get(POLL_ENV, POLL_DEFAULT))
    limit = float(os.environ.get(TIMEOUT_ENV, TIMEOUT_DEFAULT))
    path = kube.core_path("jobs", name, "batch/v1")
    started = time.monotonic()
    shown = (-1, -1)
    while True:
        job = kube.rest("GET", path, verb="get", plural="jobs", name=name)
        status = job.get("status") or {}
        done, failed = (
            len(indexes(status.get("completedIndexes"))),
            len(indexes(status.get("failedIndexes"))),
        )
        if (done, failed) != shown:
            shown = (done, failed)
            bar = "#" * (20 * done // shards)
            click.echo(f"shards [{bar:<20}] {done}/{shards} done, {failed} failed", err=True)
        if _finished(job):
            return job
        if time.monotonic() - started > limit:
            raise WaitFailed(
                f"Job {name!r} did not finish in {format_duration(limit)}",
                hint=f"follow it with: kubectl get job {name} -n {kube.namespace}",
            )
        time.sleep(poll)


def secrets_of(kube: Kube, objects: list[dict[str, Any]]) -> list[str]:
    names = {target_of(o) for o in objects}
    return sorted({s for s in (read_target(kube, n).secret for n in names) if s})


def run_job(kube: Kube, spec: JobSpec) -> int:
    """Create RBAC, the plan and the Job, follow it, print the summary; the exit code."""
    check_shards(spec.shards)
    chosen = select(
        kube,
        spec.backups,
        all_=spec.all_,
        target=spec.target,
        fraction=spec.backup_fraction,
        seed=spec.seed,
        shards=1,
        index=0,
    )
    plan = balanced_plan(((name_of(o), stored_size(o)) for o in chosen), spec.shards)
    name = f"{NAME}-{int(time.time())}"
    plan_obj = plan_object(kube.namespace, name, plan)  # refused here if it is too large
    for obj in rbac_objects(kube.namespace, secrets_of(kube, chosen)):
        put(kube, obj)
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    put(kube, plan_obj)
    try:
        created = put(kube, job_object(spec, kube.namespace, name))
    except BaseException:
        with contextlib.suppress(ClusterError, NotFound):
            delete_plan(kube, name)
        raise
    own_plan(kube, name, created)
    loads = "/".join(str(len(names)) for names in plan)
    click.echo(
        f"job.batch/{name} created: {spec.shards} shard(s), {len(chosen)} backup(s) "
        f"({loads} by shard)",
        err=True,
    )
    job = follow(kube, name, spec.shards)
    return summarize(kube, chosen, started, _finished(job) == "Complete")


def own_plan(kube: Kube, name: str, job: Mapping[str, Any]) -> None:
    """Make the Job the plan's owner, so that the Job's TTL (the garbage collector) deletes
    the plan too; failing that, the plan stays behind, which is said."""
    owner = {"apiVersion": "batch/v1", "kind": "Job", "name": name}
    owner["uid"] = str((job.get("metadata") or {}).get("uid", ""))
    body = {"metadata": {"ownerReferences": [owner]}}
    path = kube.core_path("configmaps", plan_name(name))
    try:
        kube.rest(
            "PATCH",
            path,
            verb="patch",
            plural="configmaps",
            name=plan_name(name),
            body=body,
            content_type="application/merge-patch+json",
        )
    except (ClusterError, NotFound) as exc:
        click.echo(
            f"warning: configmap/{plan_name(name)} is not owned by the Job ({exc.message}): "
            f"delete it after the Job (kubectl delete configmap {plan_name(name)} "
            f"-n {kube.namespace})",
            err=True,
        )


def delete_plan(kube: Kube, name: str) -> None:
    path = kube.core_path("configmaps", plan_name(name))
    kube.rest("DELETE", path, verb="delete", plural="configmaps", name=plan_name(name))


def summarize(kube: Kube, chosen: list[dict[str, Any]], started: str, complete: bool) -> int:
    """The results the pods recorded on the backups since the Job started."""
    bad = 0
    counts: dict[str, int] = {}
    for obj in chosen:
        name = str(obj["metadata"]["name"])
        now = kube.get(PLURAL, name)
        notes = (now.get("metadata") or {}).get("annotations") or {}
        result = str(notes.get(VERIFY_RESULT, ""))
        fresh = str(notes.get(VERIFIED_AT, "")) >= started and result
        in_progress = (now.get("status") or {}).get("state") != "Completed"
        kind = result.split(":", 1)[0] if fresh else "skipped" if in_progress else "not verified"
        counts[kind] = counts.get(kind, 0) + 1
        if kind != OK:
            bad += kind != "skipped"
            click.echo(f"{kind.upper():<8}{name}" + (f": {result}" if fresh else ""))
    summary = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
    click.echo(f"{len(chosen)} backup(s): {summary or 'none'}", err=True)
    if not complete:
        click.echo("the Job failed: some shards were not verified (see its pods' logs)", err=True)
    return int(ExitCode.OK if complete and not bad else ExitCode.FAILURE)
