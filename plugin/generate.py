"""`backup` and `restore`: print a manifest, refusing one that the rule set rejects."""

from __future__ import annotations

from typing import Any

import click

from longhorn_bi.engine.errors import ExitCode
from longhorn_bi.engine.manifests import backup_manifest, restore_manifest
from longhorn_bi.engine.rules import RuleContext, Severity, Violation, evaluate
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.plugin.options import (
    emit_json,
    emit_yaml,
    longhorn_version_option,
    namespace_option,
    parse_labels,
)

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


def report_violations(violations: list[Violation]) -> None:
    for violation in violations:
        click.echo(
            f"{violation.severity}: [{violation.rule}] {violation.path_str}: {violation.message}",
            err=True,
        )


@click.command()
@click.argument("name")
@click.option(
    "--backing-image",
    metavar="NAME",
    help="Backing image to back up (default: NAME; Longhorn 1.8+).",
)
@click.option(
    "--backup-target",
    metavar="NAME",
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
@longhorn_version_option
def backup(
    name: str,
    backing_image: str | None,
    backup_target: str | None,
    labels: dict[str, str],
    namespace: str,
    output: str,
    version: LonghornVersion,
) -> None:
    """Print a BackupBackingImage that backs up a backing image.

    Refuses (exit 2) to print a manifest that breaks a rule, e.g. on Longhorn 1.6/1.7 a
    backup whose name differs from its backing image.
    """
    manifest = backup_manifest(
        name,
        backing_image=backing_image,
        backup_target=backup_target,
        labels=labels,
        namespace=namespace,
        version=version,
    )
    emit_checked(manifest, version, namespace, output)


@click.command()
@click.argument("name")
@click.option(
    "--backup-url",
    required=True,
    metavar="URL",
    help="status.url of the backup, e.g. s3://bucket@region/?backingImage=NAME.",
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
    "--backup-target-name", metavar="NAME", help="Backup target to read from (Longhorn 1.8+)."
)
@namespace_option
@OUTPUT
@longhorn_version_option
def restore(
    name: str,
    backup_url: str,
    concurrent_limit: str | None,
    checksum: str | None,
    backup_target_name: str | None,
    namespace: str,
    output: str,
    version: LonghornVersion,
) -> None:
    """Print a BackingImage NAME restored from a backup.

    Refuses (exit 2) to print a manifest that breaks a rule, e.g. a malformed --backup-url
    or --concurrent-limit 0.
    """
    manifest = restore_manifest(
        name,
        backup_url=backup_url,
        concurrent_limit=concurrent_limit,
        checksum=checksum,
        backup_target_name=backup_target_name,
        namespace=namespace,
        version=version,
    )
    emit_checked(manifest, version, namespace, output)
