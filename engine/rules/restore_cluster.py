"""Rules of a restore BackingImage that need cluster facts: which target Longhorn reads the
backup from, whether it can, and what the backup's content is known to be."""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.backup_url import BackingImageBackupURL, parse_backup_url
from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.facts import (
    BACKUPS,
    DEFAULT_TARGET_NAME,
    TARGETS,
    BackupFact,
    BackupTargetFact,
)
from longhorn_bi.engine.rules.base import (
    Finding,
    Manifest,
    RuleContext,
    Severity,
    manager,
    rule,
)
from longhorn_bi.engine.rules.cluster import absent_severity, where
from longhorn_bi.engine.rules.restore import BI, MATCHED_SCHEMES, PARAMS, RESTORE
from longhorn_bi.engine.rules.restore import MUTATOR as BI_MUTATOR

BIDS_CONTROLLER = "controller/backing_image_data_source_controller.go"
# Stores Longhorn reads only with a credential secret (types.BackupStoreRequireCredential).
CREDENTIAL_SCHEMES = frozenset({"s3", "cifs", "azblob"})


def _without_query(url: str) -> str:
    return url.partition("?")[0]


def _is_backup_at(backup: BackupFact, restore: BackingImageBackupURL, url: str) -> bool:
    """Whether the mutator matches `backup` to the restore's URL: the same target URL (query
    dropped) and the same backingImage parameter, as findBackupTargetName compares them."""
    if _without_query(backup.url) != _without_query(url):
        return False
    try:
        return parse_backup_url(backup.url).backing_image == restore.backing_image
    except InvalidBackupURL:
        return False


def _matched_backup(
    m: Manifest, restore: BackingImageBackupURL, ctx: RuleContext
) -> BackupFact | None:
    url = m.source_parameters["backup-url"]
    for backup in ctx.facts.backups_of(restore.backing_image):
        if backup.url and _is_backup_at(backup, restore, url):
            return backup
    return None


def restore_target(m: Manifest, ctx: RuleContext) -> BackupTargetFact | None:
    """The target whose credentials Longhorn restores with, when the facts tell it: the
    named one (1.8+), the one of the matching backup (1.8+, the mutator's pick), or the one
    target before 1.8."""
    restore = m.backup_url
    if restore is None:
        return None
    if not ctx.version.restore_has_backup_target_name:
        return ctx.facts.target(DEFAULT_TARGET_NAME)
    named = m.source_parameters.get("backup-target-name")
    if named:
        return ctx.facts.target(named)
    backup = _matched_backup(m, restore, ctx)
    return ctx.facts.target(backup.target_name) if backup is not None else None


@rule(
    "LHB404",
    "restore-target-configured",
    Severity.ERROR,
    BI,
    "Longhorn can tell which target to restore from",
    source=(manager(BI_MUTATOR, "1.8-1.12"), manager(BIDS_CONTROLLER, "1.6-1.12")),
    source_types=RESTORE,
    needs_facts=True,
)
def check_restore_target(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """From 1.8, without `backup-target-name`, Longhorn's mutator looks for a
    BackupBackingImage whose status.url matches `backup-url` to learn the target, and
    refuses the restore when none does. A named target must exist (the restore waits for it
    otherwise). Longhorn reads `backup-url` as given, with the target's credentials, so a
    URL on another store than the target's is a warning (it works for stores without
    credentials); before 1.8 that target is the backup-target setting."""
    restore = m.backup_url  # None when invalid: LHB201 reports that
    if restore is None:
        return
    path = (*PARAMS, "backup-url")
    named = (
        m.source_parameters.get("backup-target-name")
        if ctx.version.restore_has_backup_target_name
        else None
    )
    if ctx.version.restore_has_backup_target_name and not named:
        backups = ctx.facts.backups
        if backups is None or restore.target.scheme not in MATCHED_SCHEMES:
            return
        known = ctx.facts.backups_of(restore.backing_image)
        if any(not b.url for b in known):
            return  # a backup of that image whose URL is not known yet may match
        if _matched_backup(m, restore, ctx) is None:
            yield Finding(
                path,
                f"no BackupBackingImage {where(ctx, BACKUPS)} has status.url {m.source_parameters['backup-url']!r}, "
                "and Longhorn's mutator refuses a restore it cannot match to a backup; copy "
                "status.url exactly, or give backup-target-name",
                absent_severity(ctx, BACKUPS),
            )
        return
    if ctx.facts.backup_targets is None:
        return
    name = named or DEFAULT_TARGET_NAME
    target = ctx.facts.target(name)
    if target is None:
        if named:
            yield Finding(
                (*PARAMS, "backup-target-name"),
                f"backup target {named!r} does not exist {where(ctx, TARGETS)}; the restore waits for it",
                absent_severity(ctx, TARGETS),
            )
        return
    store = target.store
    if store is not None and not store.same_store(restore.target):
        what = f"backup target {name!r}" if named else "the backup-target setting"
        yield Finding(
            path,
            f"backup-url points at {restore.target.url} but {what} is {target.url}; Longhorn reads "
            "the URL as given with that target's credentials, so make them agree",
            Severity.WARNING,
        )


@rule(
    "LHB405",
    "restore-checksum-agrees",
    Severity.WARNING,
    BI,
    "checksum agrees with the backup's",
    source=(
        manager("controller/backup_backing_image_controller.go", "1.6-1.12"),
        manager(BIDS_CONTROLLER, "1.6-1.12"),
    ),
    source_types=RESTORE,
    needs_facts=True,
)
def check_restore_checksum_agrees(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A restore's spec.checksum that differs from what the backup holds makes the restore
    fail after the whole transfer. The backup's content is known from its
    BackupBackingImage's status.checksum or, failing that, from the checksum of the backing
    image it is taken from, in the files or the cluster."""
    restore = m.backup_url  # None when invalid: LHB201 reports that
    checksum = m.spec.get("checksum")
    if restore is None or not checksum or not isinstance(checksum, str):
        return
    checksum = checksum.strip()
    for known, origin in _known_checksums(m, restore, ctx):
        if known != checksum:
            yield Finding(
                ("spec", "checksum"),
                f"checksum differs from {origin} ({known[:16]}...); Longhorn will fail the restore "
                "after transferring it all",
            )
            return


def _known_checksums(
    m: Manifest, restore: BackingImageBackupURL, ctx: RuleContext
) -> Iterator[tuple[str, str]]:
    url, wanted = m.source_parameters["backup-url"], restore.target
    for backup in ctx.facts.backups_of(restore.backing_image):
        if backup.url != url:  # the same backup URL needs no look at the target
            fact = ctx.facts.target(backup.target_name)
            target = fact.store if fact is not None else None
            if target is None or not target.same_store(wanted):
                continue
        if backup.checksum:
            yield backup.checksum, f"the one recorded for backup {backup.name!r}"
            return
    image = ctx.facts.backing_image(restore.backing_image)
    if image is not None and image.checksum:
        yield (
            image.checksum,
            f"that of backing image {image.name!r}, which the backup is taken from",
        )


@rule(
    "LHB407",
    "restore-target-credentials",
    Severity.WARNING,
    BI,
    "the restore's target has its credentials",
    source=(manager(BIDS_CONTROLLER, "1.6-1.12"), manager("types/types.go", "1.6-1.12")),
    source_types=RESTORE,
    needs_facts=True,
)
def check_restore_credentials(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn reads an s3, cifs or azblob store only with the target's credential secret:
    without one it does not start the restore, which waits until one is set."""
    if m.backup_url is None or ctx.facts.backup_targets is None:
        return
    target = restore_target(m, ctx)
    store = target.store if target is not None else None
    if target is None or store is None or store.scheme not in CREDENTIAL_SCHEMES:
        return
    if target.credential_secret == "":
        yield Finding(
            (*PARAMS, "backup-url"),
            f"backup target {target.name!r} ({target.url}) has no credential secret, and Longhorn "
            f"reads {store.scheme} stores only with one; set its credentialSecret (the "
            "backup-target-credential-secret setting before 1.8)",
        )
