"""`backup` and `restore`: print a manifest, refusing one that the rule set rejects.

With --apply (and --from-backup for a restore) they work on a cluster: see cluster_apply.py.
"""

from __future__ import annotations

from typing import Any

import click

from longhorn_bi.engine.errors import ExitCode
from longhorn_bi.engine.manifests import backup_manifest, restore_manifest
from longhorn_bi.engine.rules import RuleContext, Severity, evaluate
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.plugin.cluster_apply import (
    ClusterRequest,
    apply_options,
    backup_finished,
    from_backup,
    restore_finished,
    run,
)
from longhorn_bi.plugin.kube import Kube, name_completer
from longhorn_bi.plugin.options import (
    cluster_version,
    emit_json,
    emit_yaml,
    longhorn_version_auto_option,
    namespace_option,
    offline_version,
    parse_labels,
    report_violations,
)
from longhorn_bi.plugin.wait import backup_judge, restore_judge

OUTPUT = click.option(
    "-o",
    "--output",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)


def emit_checked(
    manifest: dict[str, Any], version: LonghornVersion, namespace: str, output: str
) -> None:
    """Print `manifest` when the rule set finds no error; warnings go to standard error."""
    violations = evaluate(manifest, RuleContext(version=version, longhorn_namespace=namespace))
    report_violations(violations)
    if any(v.severity is Severity.ERROR for v in violations):
        raise click.exceptions.Exit(ExitCode.USAGE)
    emit_json(manifest) if output == "json" else emit_yaml(manifest)


@click.command()
@click.argument("name", shell_complete=name_completer("backingimages"))
@click.option(
    "--backing-image",
    metavar="NAME",
    shell_complete=name_completer("backingimages"),
    help="Backing image to back up (default: NAME; Longhorn 1.8+).",
)
@click.option(
    "--backup-target",
    metavar="NAME",
    shell_complete=name_completer("backuptargets"),
    help='Backup target to use (default: "default"; Longhorn 1.8+).',
)
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=parse_labels,
    help="Backup label (repeatable).",
)
@namespace_option
@OUTPUT
@longhorn_version_auto_option
@apply_options
@click.pass_context
def backup(
    ctx: click.Context,
    /,
    name: str,
    backing_image: str | None,
    backup_target: str | None,
    labels: dict[str, str],
    namespace: str,
    output: str,
    version: LonghornVersion | None,
    **cluster: Any,
) -> None:
    """Print a BackupBackingImage that backs up a backing image, or --apply it.

    Refuses (exit 2) to print a manifest that breaks a rule, e.g. on Longhorn 1.6/1.7 a
    backup whose name differs from its backing image.

    With --apply it first checks the backup against the cluster (the backing image exists
    and is ready, the backup target is configured and available, the image has no backup
    on that target yet; exit 1 if not), then creates it by server-side apply; --wait shows
    its progress, fails at once on Longhorn's error and prints status.url at the end.
    """

    def build(kube: Kube | None, version: LonghornVersion) -> dict[str, Any]:
        return backup_manifest(
            name,
            backing_image=backing_image,
            backup_target=backup_target,
            labels=labels,
            namespace=namespace,
            version=version,
        )

    request = ClusterRequest.from_params(namespace, cluster)
    if request.apply:
        run(request, cluster_version(ctx, version), build, output, backup_judge, backup_finished)
        return
    offline = offline_version(version, "--apply")
    emit_checked(build(None, offline), offline, namespace, output)


@click.command()
@click.argument("name")
@click.option(
    "--backup-url",
    metavar="URL",
    help="status.url of the backup, e.g. s3://bucket@region/?backingImage=NAME.",
)
@click.option(
    "--from-backup",
    "from_backup_name",
    metavar="BACKUP",
    shell_complete=name_completer("backupbackingimages"),
    help="A BackupBackingImage in the cluster: its status.url, status.checksum and backup "
    "target fill --backup-url, --checksum and --backup-target-name.",
)
@click.option(
    "--concurrent-limit",
    metavar="N",
    help="Restore workers (default: Longhorn's backup-concurrent-limit setting).",
)
@click.option(
    "--checksum",
    metavar="HEX",
    help="Expected SHA-512 of the image (status.checksum of the backup).",
)
@click.option(
    "--backup-target-name",
    metavar="NAME",
    shell_complete=name_completer("backuptargets"),
    help="Backup target to read from (Longhorn 1.8+).",
)
@namespace_option
@OUTPUT
@longhorn_version_auto_option
@apply_options
@click.pass_context
def restore(
    ctx: click.Context,
    /,
    name: str,
    backup_url: str | None,
    from_backup_name: str | None,
    concurrent_limit: str | None,
    checksum: str | None,
    backup_target_name: str | None,
    namespace: str,
    output: str,
    version: LonghornVersion | None,
    **cluster: Any,
) -> None:
    """Print a BackingImage NAME restored from a backup, or --apply it.

    Refuses (exit 2) to print a manifest that breaks a rule, e.g. a malformed --backup-url
    or --concurrent-limit 0.

    --from-backup BACKUP reads the URL, checksum and target of a backup in the cluster
    instead of copying them by hand. With --apply the restore is checked against the
    cluster, created by server-side apply, and --wait follows it until its first copy is
    ready (exit 0) or failed (exit 1).
    """
    if backup_url and from_backup_name:
        raise click.UsageError("give --backup-url or --from-backup, not both")
    if not backup_url and not from_backup_name:
        param = next(p for p in ctx.command.params if p.name == "backup_url")
        raise click.MissingParameter(ctx=ctx, param=param)

    def build(kube: Kube | None, version: LonghornVersion) -> dict[str, Any]:
        url, expected, target = backup_url or "", checksum, backup_target_name
        if kube is not None and from_backup_name:
            source = from_backup(kube, from_backup_name, version)
            url = source.url
            expected = checksum if checksum is not None else (source.checksum or None)
            target = backup_target_name if backup_target_name is not None else source.target_name
        return restore_manifest(
            name,
            backup_url=url,
            concurrent_limit=concurrent_limit,
            checksum=expected,
            backup_target_name=target,
            namespace=namespace,
            version=version,
        )

    request = ClusterRequest.from_params(namespace, cluster)
    if request.apply or from_backup_name:
        version = cluster_version(ctx, version)
        run(request, version, build, output, restore_judge, restore_finished)
        return
    offline = offline_version(version, "--apply")
    emit_checked(build(None, offline), offline, namespace, output)
