"""Rules of a BackupBackingImage, for both version lines."""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.names import LONGHORN_NAME, MAX_NAME_LENGTH, name_problem
from longhorn_bi.engine.rules.base import (
    Cel,
    Finding,
    Manifest,
    RuleContext,
    Severity,
    as_mapping,
    as_text,
    crds,
    manager,
    rule,
)
from longhorn_bi.engine.rules.schema import cel_list, cel_regex, cel_shown

BBI = {"BackupBackingImage"}
CONTROLLER = "controller/backup_backing_image_controller.go"
FINAL_STATES = frozenset({"Completed", "Error", "Unknown"})
# CEL of backup_to_make's opposite: Longhorn no longer has to make this backup.
_FINISHED = (
    "has(object.status) && ((has(object.status.lastSyncedAt) && object.status.lastSyncedAt != "
    "'') || (has(object.status.state) && object.status.state in "
    + cel_list(tuple(sorted(FINAL_STATES)))
    + "))"
)


def _cel_name(value: str) -> str:
    """CEL: `value` (a string) is a name Longhorn takes (names.name_problem finds nothing)."""
    return f"(size({value}) <= {MAX_NAME_LENGTH} && {value}.matches({cel_regex(LONGHORN_NAME)}))"


def backup_to_make(m: Manifest) -> bool:
    """Whether Longhorn still has to make this backup: only then does its controller look up
    the backing image (a user-created backup never synced and not Completed, Error or
    Unknown: controller/backup_backing_image_controller.go, 1.6-1.12). A finished backup,
    e.g. one the 1.8 upgrade rewrites, outlives its image. A CREATE has no status."""
    status = as_mapping(m.obj.get("status"))
    return not status.get("lastSyncedAt") and status.get("state") not in FINAL_STATES


@rule(
    "LHB301",
    "backup-user-created",
    Severity.ERROR,
    BBI,
    "userCreated is set to a boolean",
    source=(crds("1.6-1.12"), manager(CONTROLLER, "1.6-1.12")),
    cel=(
        Cel(
            "has(object.spec) && has(object.spec.userCreated)",
            "'spec.userCreated is missing; set userCreated: true for a backup you create'",
            path=("spec",),
        ),
    ),
)
def check_user_created(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.userCreated` is required by the CRD: true for a backup you ask for (false marks
    objects Longhorn syncs from the backupstore itself, which it never backs up)."""
    if "userCreated" not in m.spec:
        yield Finding(
            ("spec",), "spec.userCreated is missing; set userCreated: true for a backup you create"
        )


@rule(
    "LHB302",
    "backup-backing-image",
    Severity.ERROR,
    BBI,
    "the backup names its backing image",
    source=(
        crds("1.8-1.12"),
        manager(CONTROLLER, "1.8-1.12"),
        manager("upgrade/v17xto180/upgrade.go", "1.8"),
    ),
    cel=(
        Cel(
            "has(object.spec) && has(object.spec.backingImage)",
            "'spec.backingImage is required from Longhorn 1.8; set it to the name of the backing "
            "image to back up'",
            path=("spec",),
            versions="1.8-1.12",
        ),
        Cel(
            f"!has(object.spec) || !has(object.spec.backingImage) || {_FINISHED} || "
            + _cel_name("object.spec.backingImage"),
            "'backingImage ' + "
            + cel_shown("object.spec.backingImage")
            + " + ' is not the name of a backing image: "
            f"2 to {MAX_NAME_LENGTH} lower-case letters, digits, -, _ or ., starting with a "
            "letter or digit'",
            path=("spec", "backingImage"),
            versions="1.8-1.12",
        ),
    ),
)
def check_backing_image_field(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """From Longhorn 1.8 the CRD requires `spec.backingImage`, the name of the image to back
    up; a backup still to be made fails without a valid one. A finished backup may hold an
    empty one: the 1.8 upgrade copies it from status.backingImage, empty when the backup never
    completed. (Before 1.8 the field does not exist: see LHB303.)"""
    if not ctx.version.backup_has_backing_image_field:
        return
    value = m.spec.get("backingImage")
    if value is None:
        yield Finding(
            ("spec",),
            f"spec.backingImage is required in Longhorn {ctx.version}; set it to the name of the "
            "backing image to back up",
        )
    elif isinstance(value, str) and backup_to_make(m):
        problem = name_problem(value)
        if problem:
            yield Finding(("spec", "backingImage"), f"backingImage {problem}")


@rule(
    "LHB303",
    "backup-name-matches-image",
    Severity.WARNING,
    BBI,
    "before 1.8 the backup is named like its image",
    source=(crds("1.6-1.7"), manager(CONTROLLER, "1.6-1.7")),
    not_in_policy="before 1.8 the API server prunes spec.backingImage before admission",
)
def check_name_matches(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Before Longhorn 1.8 a backup backs up the image named like the backup, and
    `spec.backingImage` is pruned by the API server: one that names another image is
    ignored. From 1.8 Longhorn itself names backups `<image>-<random>`, so any name is
    fine."""
    image = as_text(m.spec.get("backingImage"))
    if not ctx.version.backup_has_backing_image_field and image and m.name and image != m.name:
        yield Finding(
            ("spec", "backingImage"),
            f"Longhorn {ctx.version} has no spec.backingImage and backs up the image named like the "
            f"backup ({m.name!r}), not {image!r}; name the backup {image!r} and drop the field",
        )


@rule(
    "LHB304",
    "backup-target-name",
    Severity.WARNING,
    BBI,
    "backupTargetName fits the version",
    source=(
        crds("1.6-1.12"),
        manager("webhook/resources/backupbackingimage/mutator.go", "1.8-1.12"),
    ),
    cel=(
        Cel(
            "!has(object.spec) || !has(object.spec.backupTargetName)",
            "'backupTargetName needs Longhorn 1.8 or later; this Longhorn drops it and backs up "
            "to the backup-target setting, so remove it'",
            path=("spec", "backupTargetName"),
            versions="1.6-1.7",
        ),
        Cel(
            "!has(object.spec) || !has(object.spec.backupTargetName) || "
            "object.spec.backupTargetName == '' || " + _cel_name("object.spec.backupTargetName"),
            "'backupTargetName ' + "
            + cel_shown("object.spec.backupTargetName")
            + " + ' is no BackupTarget name; "
            "Longhorn backs up to the default target instead'",
            path=("spec", "backupTargetName"),
            versions="1.8-1.12",
        ),
    ),
)
def check_backup_target_name(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.backupTargetName` exists from Longhorn 1.8 (default "default"). Before 1.8 the
    API server prunes it and the backup goes to the one target of the backup-target setting.
    A name no BackupTarget can have is not refused either: Longhorn's mutator backs up to
    the default target instead. Both are warnings."""
    value = m.spec.get("backupTargetName")
    if value is None:
        return
    if not ctx.version.has_backup_target_crd:
        yield Finding(
            ("spec", "backupTargetName"),
            f"backupTargetName needs Longhorn 1.8 or later; Longhorn {ctx.version} drops it and "
            "backs up to the backup-target setting, so remove it",
        )
    elif isinstance(value, str) and value:
        problem = name_problem(value)
        if problem:
            yield Finding(
                ("spec", "backupTargetName"),
                f"backupTargetName {problem}: no BackupTarget has that name, so Longhorn backs up "
                "to the default target instead",
            )
