"""Rules of a BackupBackingImage, for both version lines."""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.names import name_problem
from longhorn_bi.engine.rules.base import Finding, Manifest, RuleContext, Severity, as_text, rule

BBI = {"BackupBackingImage"}


@rule("LHB301", "backup-user-created", Severity.ERROR, BBI, "userCreated is set to a boolean")
def check_user_created(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.userCreated` is required: true for a backup you ask for (false marks objects
    Longhorn syncs from the backupstore itself)."""
    if "userCreated" not in m.spec:
        yield Finding(
            ("spec",), "spec.userCreated is missing; set userCreated: true for a backup you create"
        )


@rule("LHB302", "backup-backing-image", Severity.ERROR, BBI, "the backup names its backing image")
def check_backing_image_field(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """From Longhorn 1.8 `spec.backingImage` is required and names the image to back up.
    Before 1.8 the field does not exist: the backup's own name is the image's name."""
    value = m.spec.get("backingImage")
    if ctx.version.backup_has_backing_image_field:
        if value is None:
            yield Finding(
                ("spec",),
                f"spec.backingImage is required in Longhorn {ctx.version}; set it to the name of the "
                "backing image to back up",
            )
        elif isinstance(value, str):
            problem = name_problem(value)
            if problem:
                yield Finding(("spec", "backingImage"), f"backingImage {problem}")
    elif isinstance(value, str) and value != m.name:
        yield Finding(
            ("spec", "backingImage"),
            f"Longhorn {ctx.version} has no spec.backingImage and backs up the image named like the "
            f"backup ({m.name!r}), not {value!r}; name the backup {value!r} and drop the field",
        )


@rule(
    "LHB303",
    "backup-name-matches-image",
    Severity.WARNING,
    BBI,
    "the backup is named like its image",
)
def check_name_matches(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn's documentation asks that a backup carry its backing image's name; from 1.8
    a different name works, but two backups of one image then look unrelated."""
    image = as_text(m.spec.get("backingImage"))
    if ctx.version.backup_has_backing_image_field and image and m.name and image != m.name:
        yield Finding(
            ("metadata", "name"),
            f"the backup is named {m.name!r} but backs up {image!r}; name it {image!r} as "
            "Longhorn's documentation advises",
        )


@rule("LHB304", "backup-target-name", Severity.ERROR, BBI, "backupTargetName fits the version")
def check_backup_target_name(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.backupTargetName` exists from Longhorn 1.8 (default "default") and must be a
    valid name; before 1.8 the one target is the backup-target setting."""
    value = m.spec.get("backupTargetName")
    if value is None:
        return
    if not ctx.version.has_backup_target_crd:
        yield Finding(
            ("spec", "backupTargetName"),
            f"backupTargetName needs Longhorn 1.8 or later; Longhorn {ctx.version} backs up to the "
            "backup-target setting, so remove it",
        )
    elif isinstance(value, str) and value:
        problem = name_problem(value)
        if problem:
            yield Finding(("spec", "backupTargetName"), f"backupTargetName {problem}")
