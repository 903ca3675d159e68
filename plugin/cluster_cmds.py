"""`list` and `describe`: the backing image backups of a cluster, kubectl style."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import click

from longhorn_bi.engine.errors import ClusterError
from longhorn_bi.engine.facts import BACKUP_TARGET_SETTING, DEFAULT_TARGET_NAME
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.plugin.cluster_facts import resolve_version
from longhorn_bi.plugin.kube import (
    API_VERSION,
    GROUP,
    Kube,
    Unreachable,
    connection_from,
    connection_options,
    name_completer,
)
from longhorn_bi.plugin.options import (
    cluster_version,
    emit_json,
    emit_yaml,
    longhorn_version_auto_option,
    namespace_option,
)

PLURAL = "backupbackingimages"
COLUMNS = ("NAME", "BACKING-IMAGE", "TARGET", "STATE", "PROGRESS", "SIZE", "VERIFIED", "AGE")
# Written by `verify` (engine/scrub/outcome.py holds the same keys; not imported: list stays light).
VERIFIED_AT, VERIFY_RESULT = "longhorn-bi.io/verified-at", "longhorn-bi.io/verify-result"
WIDE_COLUMNS = ("USER-CREATED", "COMPRESSION", "CHECKSUM", "URL")
NONE = "<none>"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def human_age(seconds: float) -> str:
    """kubectl's rounding of an age: 45s, 5m12s, 3h, 2d5h, 400d, 3y20d."""
    s = max(0, int(seconds))
    minutes, hours, days = s // 60, s // 3600, s // 86400
    if s < 120:
        return f"{s}s"
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    if years < 8:
        return f"{years}y{days % 365}d" if days % 365 else f"{years}y"
    return f"{years}y"


def human_size(value: Any) -> str:
    """Bytes as kubectl-like binary quantities: 512, 1.5Ki, 20Gi."""
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return NONE
    size, unit = float(value), ""
    for next_unit in ("Ki", "Mi", "Gi", "Ti", "Pi"):
        if size < 1024:
            break
        size, unit = size / 1024, next_unit
    return f"{size:.0f}{unit}" if size >= 100 or size == int(size) else f"{size:.1f}{unit}"


def age_of(obj: Mapping[str, Any], now: datetime) -> str:
    stamp = _text(_mapping(obj.get("metadata")).get("creationTimestamp"))
    try:
        created = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return NONE
    return human_age((now - created).total_seconds())


def backing_image_of(obj: Mapping[str, Any]) -> str:
    """spec.backingImage (1.8+), else status.backingImage, else the backup's own name (1.6/1.7)."""
    return (
        _text(_mapping(obj.get("spec")).get("backingImage"))
        or _text(_mapping(obj.get("status")).get("backingImage"))
        or _text(_mapping(obj.get("metadata")).get("name"))
    )


def target_of(obj: Mapping[str, Any]) -> str:
    return _text(_mapping(obj.get("spec")).get("backupTargetName")) or DEFAULT_TARGET_NAME


def row(obj: Mapping[str, Any], now: datetime, wide: bool) -> list[str]:
    status = _mapping(obj.get("status"))
    progress = status.get("progress")
    cells = [
        _text(_mapping(obj.get("metadata")).get("name")),
        backing_image_of(obj) or NONE,
        target_of(obj),
        _text(status.get("state")) or NONE,
        f"{progress}%" if isinstance(progress, int) else NONE,
        human_size(status.get("size")),
        verified_cell(obj, now),
        age_of(obj, now),
    ]
    if wide:
        user_created = _mapping(obj.get("spec")).get("userCreated")
        checksum = _text(status.get("checksum"))
        cells += [
            str(user_created).lower() if isinstance(user_created, bool) else NONE,
            _text(status.get("compressionMethod")) or NONE,
            f"{checksum[:12]}..." if checksum else NONE,
            _text(status.get("url")) or NONE,
        ]
    return cells


def _annotations(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(_mapping(obj.get("metadata")).get("annotations"))


def verified_cell(obj: Mapping[str, Any], now: datetime) -> str:
    """`ok 3d`, `failed 2h`: the last verify result and how long ago; <none> if never."""
    notes = _annotations(obj)
    result = _text(notes.get(VERIFY_RESULT)).split(":", 1)[0]
    if not result:
        return NONE
    try:
        at = datetime.fromisoformat(_text(notes.get(VERIFIED_AT)).replace("Z", "+00:00"))
    except ValueError:
        return result
    return f"{result} {human_age((now - at).total_seconds())}"


def describe_verification(obj: Mapping[str, Any]) -> list[str]:
    notes = _annotations(obj)
    if not _text(notes.get(VERIFY_RESULT)):
        return ["Verification:", "  (never verified; run: kubectl longhorn-bi verify NAME)"]
    return [
        "Verification:",
        f"  Result:     {_text(notes.get(VERIFY_RESULT))}",
        f"  Checked at: {_text(notes.get(VERIFIED_AT)) or NONE}",
    ]


def table(rows: list[list[str]], header: tuple[str, ...]) -> str:
    """Columns padded like kubectl's tabwriter: 3 spaces between, no trailing space."""
    widths = [max(len(r[i]) for r in [list(header), *rows]) for i in range(len(header))]
    lines = []
    for cells in [list(header), *rows]:
        lines.append("   ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    return "\n".join(lines)


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    for item in items:
        item.setdefault("apiVersion", f"{GROUP}/{API_VERSION}")
        item.setdefault("kind", "BackupBackingImage")
    return {"apiVersion": "v1", "kind": "List", "items": items, "metadata": {"resourceVersion": ""}}


@click.command("list")
@click.option(
    "-o",
    "--output",
    type=click.Choice(["wide", "json", "yaml"]),
    help="Output format: wide adds columns; json and yaml print a v1 List.",
)
@click.option(
    "--backing-image",
    metavar="NAME",
    shell_complete=name_completer("backingimages"),
    help="Only the backups of this backing image.",
)
@namespace_option
@connection_options
def list_backups(
    output: str | None, backing_image: str | None, namespace: str, **connection: Any
) -> None:
    """List the backing image backups (BackupBackingImages) of the namespace."""
    kube = Kube(connection_from(namespace, connection))
    items = sorted(kube.list(PLURAL), key=lambda o: _text(_mapping(o.get("metadata")).get("name")))
    if backing_image:
        items = [o for o in items if backing_image_of(o) == backing_image]
    if output == "json":
        emit_json(as_list(items))
        return
    if output == "yaml":
        emit_yaml(as_list(items))
        return
    if not items:
        click.echo(f"No resources found in {namespace} namespace.", err=True)
        return
    wide = output == "wide"
    now = datetime.now(UTC)
    header = COLUMNS + WIDE_COLUMNS if wide else COLUMNS
    click.echo(table([row(o, now, wide) for o in items], header))


def _block(data: Any, indent: int = 2) -> str:
    import yaml

    text = yaml.safe_dump(data, sort_keys=True, default_flow_style=False).rstrip()
    return "\n".join(" " * indent + line for line in text.splitlines())


def describe_target(kube: Kube, obj: Mapping[str, Any], version: LonghornVersion) -> list[str]:
    """Lines about the backup's target; a target we may not read is said so, not fatal."""
    name = target_of(obj) if version.has_backup_target_crd else DEFAULT_TARGET_NAME
    lines = ["Backup Target:", f"  Name:       {name}"]
    try:
        if version.has_backup_target_crd:
            target = kube.find("backuptargets", name)
            if target is None:
                return [*lines, "  (no BackupTarget of this name exists)"]
            available = _mapping(target.get("status")).get("available")
            url = _text(_mapping(target.get("spec")).get("backupTargetURL"))
            lines += [
                f"  URL:        {url or NONE}",
                f"  Available:  {str(available).lower() if isinstance(available, bool) else NONE}",
            ]
            credential = _text(_mapping(target.get("spec")).get("credentialSecret"))
            lines.append(f"  Credential: {credential or NONE}")
        else:
            setting = kube.find("settings", BACKUP_TARGET_SETTING)
            url = _text((setting or {}).get("value"))
            lines.append(f"  URL:        {url or NONE}  (setting {BACKUP_TARGET_SETTING})")
    except Unreachable:
        raise
    except ClusterError as exc:
        lines.append(f"  (cannot read it: {exc.message})")
    return lines


def restore_commands(kube: Kube, obj: Mapping[str, Any], version: LonghornVersion) -> list[str]:
    """The commands that would bring the backed-up image back."""
    name = _text(_mapping(obj.get("metadata")).get("name"))
    image = backing_image_of(obj)
    status = _mapping(obj.get("status"))
    url, checksum = _text(status.get("url")), _text(status.get("checksum"))
    ns = kube.namespace
    lines = ["Restore:"]
    if _text(status.get("state")) != "Completed" or not url:
        return [*lines, "  (possible once the backup is Completed)"]
    if kube.find("backingimages", image) is not None:
        lines.append(f"  BackingImage {image!r} exists now; restore under another NAME beside it.")
    q = shlex.quote
    lines.append(
        f"  kubectl longhorn-bi restore {q(image)} --from-backup {q(name)} -n {q(ns)} --apply --wait"
    )
    offline = f"  kubectl longhorn-bi restore {q(image)} --backup-url {q(url)}"
    if checksum:
        offline += f" --checksum {checksum}"
    if version.restore_has_backup_target_name:
        offline += f" --backup-target-name {q(target_of(obj))}"
    lines += ["  or, as a manifest for GitOps:", offline + f" -n {q(ns)}"]
    return lines


@click.command()
@click.argument("name", shell_complete=name_completer(PLURAL))
@namespace_option
@longhorn_version_auto_option
@connection_options
@click.pass_context
def describe(
    ctx: click.Context,
    /,
    name: str,
    namespace: str,
    version: LonghornVersion | None,
    **connection: Any,
) -> None:
    """Show a backup: spec, status, its backup target and how to restore it."""
    kube = Kube(connection_from(namespace, connection))
    obj = kube.get(PLURAL, name)
    detected = resolve_version(kube, cluster_version(ctx, version))
    metadata = _mapping(obj.get("metadata"))
    status = _mapping(obj.get("status"))
    now = datetime.now(UTC)
    lines = [
        f"Name:           {name}",
        f"Namespace:      {namespace}",
        f"Backing Image:  {backing_image_of(obj) or NONE}",
        f"State:          {_text(status.get('state')) or NONE}",
        f"Progress:       {status['progress']}%"
        if isinstance(status.get("progress"), int)
        else f"Progress:       {NONE}",
        f"URL:            {_text(status.get('url')) or NONE}",
        f"Size:           {human_size(status.get('size'))}",
        f"Created:        {_text(metadata.get('creationTimestamp')) or NONE} "
        f"({age_of(obj, now)} ago)",
    ]
    if _text(status.get("error")):
        lines.append(f"Error:          {status['error']}")
    lines += [f"Longhorn:       {detected}", *describe_target(kube, obj, detected)]
    lines += describe_verification(obj)
    lines += ["Spec:", _block(obj.get("spec") or {})]
    lines += ["Status:", _block(dict(status)) if status else f"  {NONE}"]
    lines += restore_commands(kube, obj, detected)
    click.echo("\n".join(lines))
