"""Cluster mode of `backup` and `restore`: preflight, server-side apply, wait with progress.

Preflight is the rule set with live facts: the manifest is first checked alone (a rule
broken by the flags is a usage error, exit 2, exactly as offline), then with the complete
facts of the cluster (a rule broken by the cluster's state fails, exit 1, before anything
is sent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import click

from longhorn_bi.engine.errors import ClusterError, ExitCode, NotFound
from longhorn_bi.engine.facts import DEFAULT_TARGET_NAME
from longhorn_bi.engine.rules import RuleContext, Severity, evaluate
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.plugin.cluster_facts import gather_facts, resolve_version
from longhorn_bi.plugin.kube import (
    PLURALS,
    Connection,
    Kube,
    connection_from,
    connection_options,
    duration_callback,
)
from longhorn_bi.plugin.options import F, emit_json, emit_yaml, report_violations
from longhorn_bi.plugin.wait import Follower, Judge

DRY_RUN = ("none", "client", "server")
DEFAULT_TIMEOUT = "30m"


def apply_options(function: F) -> F:
    """--apply, --wait, --timeout, --dry-run, --force-conflicts and the connection flags."""
    for decorator in reversed(
        [
            click.option(
                "--apply",
                is_flag=True,
                help="Check the manifest against the cluster, then server-side apply it.",
            ),
            click.option(
                "--wait",
                is_flag=True,
                help="After --apply, follow the object with a progress bar until it is done; "
                "fail at once on Longhorn's error.",
            ),
            click.option(
                "--timeout",
                default=DEFAULT_TIMEOUT,
                show_default=True,
                metavar="DURATION",
                callback=duration_callback,
                help="How long --wait waits (e.g. 90s, 10m, 2h); 0 waits forever.",
            ),
            click.option(
                "--dry-run",
                type=click.Choice(DRY_RUN),
                default="none",
                show_default=True,
                is_flag=False,
                flag_value="client",
                help="client: preflight and print, send nothing; server: preflight and send "
                "with dryRun=All, print what the server would store. Implies --apply.",
            ),
            click.option(
                "--force-conflicts",
                is_flag=True,
                help="Take over fields that another field manager owns (server-side apply).",
            ),
            connection_options,
        ]
    ):
        function = decorator(function)
    return function


@dataclasses.dataclass(frozen=True)
class ClusterRequest:
    connection: Connection
    apply: bool
    wait: bool
    timeout: float | None
    dry_run: str
    force_conflicts: bool

    @classmethod
    def from_params(cls, namespace: str, params: Mapping[str, Any]) -> ClusterRequest:
        dry_run = str(params.get("dry_run") or "none")
        apply = bool(params.get("apply")) or dry_run != "none"
        wait = bool(params.get("wait"))
        if wait and dry_run != "none":
            raise click.UsageError("--wait cannot follow a --dry-run: nothing is created")
        if wait and not apply:
            raise click.UsageError("--wait follows what --apply creates: add --apply")
        if params.get("force_conflicts") and not apply:
            raise click.UsageError("--force-conflicts applies to --apply: add --apply")
        return cls(
            connection=connection_from(namespace, params),
            apply=apply,
            wait=wait,
            timeout=params.get("timeout"),
            dry_run=dry_run,
            force_conflicts=bool(params.get("force_conflicts")),
        )


Build = Callable[[Kube | None, LonghornVersion], dict[str, Any]]


def preflight(kube: Kube, manifest: dict[str, Any], version: LonghornVersion) -> None:
    """The rule set on `manifest`, alone (exit 2) and then with the cluster's facts (exit 1)."""
    ctx = RuleContext(version=version, longhorn_namespace=kube.namespace)
    alone = evaluate(manifest, ctx)
    if any(v.severity is Severity.ERROR for v in alone):
        report_violations(alone)
        raise click.exceptions.Exit(ExitCode.USAGE)
    live = evaluate(manifest, dataclasses.replace(ctx, facts=gather_facts(kube, version)))
    if report_violations(live):
        click.echo(
            f"error: preflight against the cluster at {kube.host} failed; nothing was applied",
            err=True,
        )
        raise click.exceptions.Exit(ExitCode.FAILURE)


def emit(obj: Mapping[str, Any], output: str) -> None:
    emit_json(obj) if output == "json" else emit_yaml(dict(obj))


def run(
    request: ClusterRequest,
    version: LonghornVersion | None,
    build: Build,
    output: str,
    judge: Judge,
    finished: Callable[[Mapping[str, Any]], str],
) -> None:
    """Preflight, then print (no --apply, or --dry-run=client), apply, and follow (--wait)."""
    kube = Kube(request.connection)
    version = resolve_version(kube, version)
    manifest = build(kube, version)
    preflight(kube, manifest, version)
    if not request.apply or request.dry_run == "client":
        emit(manifest, output)
        return
    result = kube.apply(
        manifest, dry_run=request.dry_run == "server", force=request.force_conflicts
    )
    if request.dry_run == "server":
        emit(result, output)
        return
    plural = PLURALS[manifest["kind"]]
    name = manifest["metadata"]["name"]
    click.echo(f"{plural}.longhorn.io/{name} serverside-applied")
    if request.wait:
        final = Follower(kube, plural, name, judge, timeout=request.timeout).run(result)
        click.echo(finished(final))


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    status = obj.get("status")
    return status if isinstance(status, Mapping) else {}


def backup_finished(obj: Mapping[str, Any]) -> str:
    """What a completed backup prints last: its URL, the input of a restore."""
    url = _status(obj).get("url")
    if not isinstance(url, str) or not url:
        raise ClusterError(
            f"backup {obj['metadata']['name']!r} completed without a status.url",
            hint="check Longhorn's manager logs; the backup cannot be restored by URL",
        )
    return url


def restore_finished(obj: Mapping[str, Any]) -> str:
    return f"backingimages.longhorn.io/{obj['metadata']['name']} ready"


@dataclasses.dataclass(frozen=True)
class BackupSource:
    """What a restore needs from a BackupBackingImage."""

    url: str
    checksum: str
    target_name: str | None


def from_backup(kube: Kube, name: str, version: LonghornVersion) -> BackupSource:
    """backup-url, checksum and backup-target-name of a completed backup in the cluster."""
    try:
        backup = kube.get("backupbackingimages", name)
    except NotFound:
        raise NotFound(
            f"--from-backup: backup {name!r} not found in namespace {kube.namespace!r}",
            hint=f"list the backups with: kubectl longhorn-bi list -n {kube.namespace}",
        ) from None
    status = _status(backup)
    state = status.get("state") or "Pending"
    url = status.get("url") if isinstance(status.get("url"), str) else ""
    if state == "Error":
        raise ClusterError(
            f"--from-backup: backup {name!r} failed: {status.get('error') or 'state Error'}",
            hint="restore from a completed backup",
        )
    if state != "Completed" or not url:
        progress = status.get("progress")
        at = f" at {progress}%" if isinstance(progress, int) else ""
        raise ClusterError(
            f"--from-backup: backup {name!r} is not complete yet (state {state}{at})",
            hint=f"wait for it: kubectl wait --for=jsonpath='{{.status.state}}'=Completed "
            f"-n {kube.namespace} backupbackingimages.longhorn.io/{name}",
        )
    spec = backup.get("spec")
    target = None
    if version.restore_has_backup_target_name:
        named = spec.get("backupTargetName") if isinstance(spec, Mapping) else None
        target = str(named or DEFAULT_TARGET_NAME)
    checksum = status.get("checksum")
    return BackupSource(
        url=url, checksum=checksum if isinstance(checksum, str) else "", target_name=target
    )
