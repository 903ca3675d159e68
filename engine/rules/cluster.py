"""Rules that need cluster facts. Each stays silent when its facts are unknown.

Facts from files are partial (an object missing from the files may exist in the cluster),
so "not found" is an error only when the facts are complete, and a warning otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.backup_url import parse_target
from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.facts import DEFAULT_TARGET_NAME, backup_image_name
from longhorn_bi.engine.rules.base import Finding, Manifest, RuleContext, Severity, as_text, rule

BI = {"BackingImage"}
BBI = {"BackupBackingImage"}
PARAMS = ("spec", "sourceParameters")
RESTORE = {"restore"}


def _absent_severity(ctx: RuleContext) -> Severity:
    return Severity.ERROR if ctx.facts.complete else Severity.WARNING


def _where(ctx: RuleContext) -> str:
    return "in the cluster" if ctx.facts.complete else "in the given files"


def _target_of_backup(m: Manifest) -> str:
    return as_text(m.spec.get("backupTargetName")) or DEFAULT_TARGET_NAME


@rule("LHB401", "backup-target-configured", Severity.ERROR, BBI, "the backup target is configured")
def check_target_configured(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A backup needs its backup target configured (a BackupTarget with a URL from 1.8, the
    backup-target setting before) and, when known, available; otherwise the backup never
    starts."""
    if ctx.facts.backup_targets is None:
        return
    name = _target_of_backup(m) if ctx.version.has_backup_target_crd else DEFAULT_TARGET_NAME
    target = ctx.facts.target(name)
    where = ("spec", "backupTargetName") if "backupTargetName" in m.spec else ("spec",)
    if ctx.version.has_backup_target_crd:
        setup = f"create BackupTarget {name!r} with spec.backupTargetURL"
    else:
        setup = "set the backup-target setting to the store's URL"
    if target is None:
        yield Finding(
            where,
            f"backup target {name!r} does not exist {_where(ctx)}; {setup}",
            _absent_severity(ctx),
        )
    elif not target.url:
        yield Finding(
            where, f"backup target {name!r} has no URL, so no backup can be made; {setup}"
        )
    elif target.available is False:
        yield Finding(
            where,
            f"backup target {name!r} ({target.url}) is not available; fix its URL or credentials "
            "(see the BackupTarget's status.conditions) before backing up",
        )


@rule("LHB402", "backup-image-exists", Severity.ERROR, BBI, "the backing image to back up exists")
def check_image_exists(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """The backing image a backup names must exist (and, when known, have a ready copy);
    otherwise Longhorn cannot find it and the backup stays stuck."""
    if ctx.facts.backing_images is None:
        return
    image_name = backup_image_name(m.obj, ctx.version)
    if not image_name:
        return
    path = ("spec", "backingImage") if "backingImage" in m.spec else ("metadata", "name")
    image = ctx.facts.backing_image(image_name)
    if image is None:
        count = len(ctx.facts.backing_images)
        among = "" if ctx.facts.complete else f" (the files hold {count} other BackingImage(s))"
        yield Finding(
            path,
            f"backing image {image_name!r} does not exist {_where(ctx)}{among}; create it first or "
            "fix the name",
            _absent_severity(ctx),
        )
    elif image.ready is False:
        yield Finding(
            path, f"backing image {image_name!r} has no ready copy yet; wait until it is ready"
        )


@rule("LHB403", "backup-not-duplicate", Severity.ERROR, BBI, "one backup per image and target")
def check_duplicate(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn keeps one backup of a backing image per backup target; a second
    BackupBackingImage for the same image and target conflicts with the first."""
    if ctx.facts.backups is None:
        return
    image = backup_image_name(m.obj, ctx.version)
    target = _target_of_backup(m) if ctx.version.has_backup_target_crd else DEFAULT_TARGET_NAME
    for other in ctx.facts.backups_of(image):
        other_target = (
            other.target_name if ctx.version.has_backup_target_crd else DEFAULT_TARGET_NAME
        )
        if other.name != m.name and other.backing_image == image and other_target == target:
            yield Finding(
                ("metadata", "name"),
                f"backup {other.name!r} already backs up {image!r} to target {target!r}; "
                "delete it first or back up to another target",
            )
            return


@rule(
    "LHB404",
    "restore-target-configured",
    Severity.ERROR,
    BI,
    "backup-url is on a configured target",
    sources=RESTORE,
)
def check_restore_target(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """The store in `backup-url` must be a configured backup target (and the one named by
    backup-target-name, when given): Longhorn reads it with that target's credentials."""
    restore = m.backup_url  # None when invalid: LHB201 reports that
    if restore is None or ctx.facts.backup_targets is None:
        return
    wanted = restore.target
    named = (
        m.source_parameters.get("backup-target-name")
        if ctx.version.restore_has_backup_target_name
        else None
    )
    path = (*PARAMS, "backup-url")
    if named:
        target = ctx.facts.target(named)
        if target is None:
            yield Finding(
                (*PARAMS, "backup-target-name"),
                f"backup target {named!r} does not exist {_where(ctx)}",
                _absent_severity(ctx),
            )
            return
        parsed = target.store
        if parsed is not None and not parsed.same_store(wanted):
            yield Finding(
                path,
                f"backup-url points at {wanted.url} but backup target {named!r} is {target.url}; "
                "make them agree",
            )
        return
    configured = [t for t in ctx.facts.backup_targets if t.url]
    if not any((p := t.store) is not None and p.same_store(wanted) for t in configured):
        known = ", ".join(f"{t.name}={t.url}" for t in configured) or "none"
        yield Finding(
            path,
            f"backup-url's store {wanted.url} is not a configured backup target {_where(ctx)} "
            f"(configured: {known}); add it as a backup target or fix the URL",
            _absent_severity(ctx),
        )


@rule(
    "LHB405",
    "restore-checksum-agrees",
    Severity.WARNING,
    BI,
    "checksum agrees with the backup's",
    sources=RESTORE,
)
def check_restore_checksum_agrees(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """When the backup's checksum is known (status.checksum of its BackupBackingImage), a
    restore's spec.checksum that differs will make the restore fail after the whole transfer."""
    restore = m.backup_url  # None when invalid: LHB201 reports that
    checksum = m.spec.get("checksum")
    if (
        restore is None
        or not checksum
        or not isinstance(checksum, str)
        or ctx.facts.backups is None
    ):
        return
    url, wanted = m.source_parameters["backup-url"], restore.target
    for backup in ctx.facts.backups_of(restore.backing_image):
        if not backup.checksum:
            continue
        if backup.url != url:  # the same backup URL needs no look at the target
            fact = ctx.facts.target(backup.target_name)
            target = fact.store if fact is not None else None
            if target is None or not target.same_store(wanted):
                continue
        if backup.checksum != checksum:
            yield Finding(
                ("spec", "checksum"),
                f"checksum differs from the one recorded for backup {backup.name!r} "
                f"({backup.checksum[:16]}...); Longhorn will fail the restore after transferring it all",
            )
            return


@rule(
    "LHB501",
    "backup-target-url",
    Severity.ERROR,
    {"BackupTarget", "Setting"},
    "a target URL is valid",
)
def check_target_url(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A BackupTarget's spec.backupTargetURL, or the backup-target setting's value, is empty
    (no target) or a valid s3, nfs, cifs, azblob or vfs URL."""
    if m.kind == "Setting":
        path: tuple[str, ...] = ("value",)
        if m.name != "backup-target":
            return
    else:
        path = ("spec", "backupTargetURL")
    url = m.text(path)
    if url:
        try:
            parse_target(url)
        except InvalidBackupURL as exc:
            yield Finding(path, str(exc))
