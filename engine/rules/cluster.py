"""Rules of backups and clones that need cluster facts (restores: restore_cluster.py). Each
stays silent when its facts are unknown.

Facts from files are partial (an object missing from the files may exist in the cluster),
so "not found" is an error only when the facts of that collection are complete (listed from
a cluster), and a warning otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.facts import (
    DEFAULT_TARGET_NAME,
    IMAGES,
    TARGETS,
    VOLUMES,
    BackupTargetFact,
    backup_image_name,
)
from longhorn_bi.engine.rules.backup import backup_to_make
from longhorn_bi.engine.rules.base import (
    Finding,
    Manifest,
    Path,
    RuleContext,
    Severity,
    as_text,
    manager,
    rule,
)

BI = {"BackingImage"}
BBI = {"BackupBackingImage"}
PARAMS = ("spec", "sourceParameters")
BBI_CONTROLLER = "controller/backup_backing_image_controller.go"
BBI_VALIDATOR = "webhook/resources/backupbackingimage/validator.go"
BBI_MUTATOR = "webhook/resources/backupbackingimage/mutator.go"
BI_VALIDATOR = "webhook/resources/backingimage/validator.go"
BI_MUTATOR = "webhook/resources/backingimage/mutator.go"
BIDS_CONTROLLER = "controller/backing_image_data_source_controller.go"


def absent_severity(ctx: RuleContext, collection: str) -> Severity:
    return Severity.ERROR if ctx.facts.is_complete(collection) else Severity.WARNING


def where(ctx: RuleContext, collection: str) -> str:
    return "in the cluster" if ctx.facts.is_complete(collection) else "in the given files"


def _target_of_backup(m: Manifest) -> str:
    return as_text(m.spec.get("backupTargetName")) or DEFAULT_TARGET_NAME


def _chosen_target(m: Manifest, ctx: RuleContext) -> tuple[list[Finding], BackupTargetFact | None]:
    """The target a backup goes to, picked as Longhorn picks it, and what is to say about the
    pick: before 1.8 the backup-target setting; from 1.8 the named BackupTarget, or "default"
    when that does not exist (the BackupBackingImage mutator's fallback)."""
    if not ctx.version.has_backup_target_crd:
        target = ctx.facts.target(DEFAULT_TARGET_NAME)
        if target is not None:
            return [], target
        missing = (
            f"the backup-target setting is not set {where(ctx, TARGETS)}; set it to the store's URL"
        )
        return [Finding(("spec",), missing, absent_severity(ctx, TARGETS))], None
    found: list[Finding] = []
    path: Path = ("spec", "backupTargetName") if "backupTargetName" in m.spec else ("spec",)
    name = _target_of_backup(m)
    target = ctx.facts.target(name)
    if target is None and name != DEFAULT_TARGET_NAME:
        found.append(
            Finding(
                path,
                f"backup target {name!r} does not exist {where(ctx, TARGETS)}; Longhorn then backs up to "
                f"the {DEFAULT_TARGET_NAME!r} target instead; create it or fix the name",
                Severity.WARNING,
            )
        )
        target = ctx.facts.target(DEFAULT_TARGET_NAME)
    if target is None:
        found.append(
            Finding(
                path,
                f"backup target {DEFAULT_TARGET_NAME!r} does not exist {where(ctx, TARGETS)}, so Longhorn "
                f"refuses the backup; create BackupTarget {DEFAULT_TARGET_NAME!r} with "
                "spec.backupTargetURL",
                absent_severity(ctx, TARGETS),
            )
        )
    return found, target


@rule(
    "LHB401",
    "backup-target-configured",
    Severity.ERROR,
    BBI,
    "the backup target is configured",
    source=(
        manager(BBI_MUTATOR, "1.8-1.12"),
        manager(BBI_VALIDATOR, "1.9-1.12"),
        manager(BBI_CONTROLLER, "1.6-1.12"),
    ),
    needs_facts=True,
)
def check_target_configured(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A backup needs its backup target (a BackupTarget from 1.8, the backup-target setting
    before) to have a URL, or it waits for ever. From 1.8 a backupTargetName that does not
    exist is silently replaced by "default" (a warning). A target that is not available is
    refused by Longhorn from 1.10 (and 1.9.2); before, the backup waits, so a warning."""
    if ctx.facts.backup_targets is None:
        return
    findings, target = _chosen_target(m, ctx)
    yield from findings
    path: Path = ("spec", "backupTargetName") if "backupTargetName" in m.spec else ("spec",)
    if target is None:
        return
    if not target.url:
        setup = (
            f"set spec.backupTargetURL of BackupTarget {target.name!r}"
            if ctx.version.has_backup_target_crd
            else "set the backup-target setting to the store's URL"
        )
        yield Finding(
            path, f"backup target {target.name!r} has no URL, so no backup can be made; {setup}"
        )
    elif target.available is False:
        refused = ctx.version.rejects_backup_to_unavailable_target
        yield Finding(
            path,
            f"backup target {target.name!r} ({target.url}) is not available"
            + (", so Longhorn refuses the backup" if refused else "; the backup waits for it")
            + "; fix its URL or credentials (see the BackupTarget's status.conditions)",
            None if refused else Severity.WARNING,
        )


@rule(
    "LHB402",
    "backup-image-exists",
    Severity.ERROR,
    BBI,
    "the backing image to back up exists",
    source=(manager(BBI_CONTROLLER, "1.6-1.12"), manager(BBI_VALIDATOR, "1.8-1.12")),
    needs_facts=True,
)
def check_image_exists(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """The backing image a backup names must exist: Longhorn fails the backup otherwise. A
    v2 image cannot be backed up (refused from 1.8). Without a ready copy the backup fails up
    to 1.9.1; from 1.9.2 Longhorn waits for one, so from the 1.9 line that is a warning.
    Only a backup still to be made needs its image: Longhorn checks it on CREATE, and a
    finished backup (Completed, Error) outlives its image."""
    if ctx.facts.backing_images is None or not backup_to_make(m):
        return
    image_name = backup_image_name(m.obj, ctx.version)
    if not image_name:
        return
    path = ("spec", "backingImage") if "backingImage" in m.spec else ("metadata", "name")
    image = ctx.facts.backing_image(image_name)
    if image is None:
        count = len(ctx.facts.backing_images)
        among = (
            ""
            if ctx.facts.is_complete(IMAGES)
            else f" (the files hold {count} other BackingImage(s))"
        )
        yield Finding(
            path,
            f"backing image {image_name!r} does not exist {where(ctx, IMAGES)}{among}; create it first or "
            "fix the name",
            absent_severity(ctx, IMAGES),
        )
    elif ctx.version.has_data_engine and image.data_engine == "v2":
        yield Finding(
            path, f"backing image {image_name!r} uses the v2 data engine, which has no backups"
        )
    elif image.ready is False:
        waits = ctx.version.backup_waits_for_ready_copy
        yield Finding(
            path,
            f"backing image {image_name!r} has no ready copy yet; "
            + (
                "Longhorn waits for one"
                if waits
                else "the backup would fail; wait until it is ready"
            ),
            Severity.WARNING if waits else None,
        )


@rule(
    "LHB403",
    "backup-not-duplicate",
    Severity.ERROR,
    BBI,
    "one backup per image and target",
    source=(manager(BBI_VALIDATOR, "1.8-1.12"),),
    needs_facts=True,
)
def check_duplicate(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn keeps one BackupBackingImage per backing image and backup target, and refuses
    a second (one it synced from the store, `<image>-<random>`, counts too)."""
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
    "LHB406",
    "clone-source",
    Severity.ERROR,
    BI,
    "the clone's source exists and fits its encryption",
    source=(manager(BI_VALIDATOR, "1.7-1.12"), manager(BI_MUTATOR, "1.7-1.12")),
    source_types={"clone"},
    needs_facts=True,
)
def check_clone_source(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn refuses a clone whose source image does not exist, is a v2 image (1.8+), is
    encrypted already (encrypt) or is not encrypted (decrypt); a plain clone (ignore) is
    refused while the source has no checksum yet, i.e. before its content is ready."""
    source_name = m.source_parameters.get("backing-image")
    if m.source_type != "clone" or not source_name or ctx.facts.backing_images is None:
        return
    path = (*PARAMS, "backing-image")
    source = ctx.facts.backing_image(source_name)
    if source is None:
        yield Finding(
            path,
            f"backing image {source_name!r} does not exist {where(ctx, IMAGES)}; create it first",
            absent_severity(ctx, IMAGES),
        )
        return
    encryption = m.source_parameters.get("encryption") or "ignore"
    if ctx.version.has_data_engine and source.data_engine == "v2":
        yield Finding(path, f"{source_name!r} is a v2 backing image, which cannot be cloned")
    elif encryption == "encrypt" and source.secret:
        yield Finding(
            path, f"{source_name!r} is encrypted already; clone it with encryption ignore"
        )
    elif encryption == "decrypt" and not source.secret:
        yield Finding(path, f"{source_name!r} is not encrypted; clone it with encryption ignore")
    elif encryption == "ignore" and source.has_status_checksum is False:
        yield Finding(
            path,
            f"{source_name!r} has no checksum yet (its content is not ready), and Longhorn refuses "
            "to clone it until it has; wait for it",
            absent_severity(ctx, IMAGES),
        )


@rule(
    "LHB408",
    "export-volume",
    Severity.ERROR,
    BI,
    "the volume to export exists and can be exported",
    source=(manager(BI_VALIDATOR, "1.6-1.12"), manager(BIDS_CONTROLLER, "1.6-1.12")),
    source_types={"export-from-volume"},
    needs_facts=True,
)
def check_export_volume(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """On CREATE Longhorn refuses an export whose volume does not exist, is faulted, or (from
    1.8) uses the v2 data engine (1.6/1.7 do not check it: a warning there). It also looks up
    the engine image of the volume's status.currentImage, so a volume without one yet is
    refused until it has (a warning: it is transient). Facts from files tell neither absence
    nor a current state, so there those are warnings. A detached volume is fine: the data
    source controller attaches it for the export."""
    name = as_text(m.source_parameters.get("volume-name"))
    if (
        m.source_type != "export-from-volume"
        or not name
        or ctx.facts.volumes is None
        or ctx.previous is not None  # an UPDATE: Longhorn checks the volume on CREATE only
        or m.obj.get("status")  # written by Longhorn: created already
    ):
        return
    path = (*PARAMS, "volume-name")
    volume = ctx.facts.volume(name)
    if volume is None:
        yield Finding(
            path,
            f"volume {name!r} does not exist {where(ctx, VOLUMES)}; create it first or fix the name",
            absent_severity(ctx, VOLUMES),
        )
        return
    v2 = volume.data_engine == "v2"
    if v2 and ctx.version.rejects_export_from_v2_volume:
        yield Finding(
            path,
            f"volume {name!r} uses the v2 data engine, and Longhorn refuses to export a backing "
            "image from a v2 volume; export a v1 volume",
        )
        return
    if v2:  # 1.6/1.7 let it through, then check what 1.8+ checks after the data engine
        yield Finding(
            path,
            f"volume {name!r} uses the v2 data engine: exporting a backing image from it is not "
            "supported (Longhorn refuses it from 1.8); export a v1 volume",
            Severity.WARNING,
        )
    if volume.robustness == "faulted":
        yield Finding(
            path,
            f"volume {name!r} is faulted, and Longhorn refuses to export a faulted volume; "
            "recover it first",
            absent_severity(ctx, VOLUMES),
        )
    elif volume.current_image == "":
        yield Finding(
            path,
            f"volume {name!r} has no engine image yet (status.currentImage), and Longhorn refuses "
            "the export until it has; wait for the volume to be created",
            Severity.WARNING,
        )
