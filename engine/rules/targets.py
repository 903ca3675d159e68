"""Rules of backup targets: a BackupTarget (1.8+) or the backup-target Setting (1.6/1.7)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from longhorn_bi.engine.backup_url import BackupTarget, parse_target
from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.facts import TARGETS
from longhorn_bi.engine.rules.base import (
    BACKUPSTORE,
    Citation,
    Finding,
    Manifest,
    RuleContext,
    Severity,
    manager,
    rule,
)
from longhorn_bi.engine.rules.cluster import where

TARGET_KINDS = {"BackupTarget", "Setting"}
BACKUP_TARGET_SETTING = "backup-target"
# The three settings that became BackupTarget "default" fields in 1.8 (types/setting.go).
TARGET_SETTINGS_BEFORE_1_8 = frozenset(
    {"backup-target", "backup-target-credential-secret", "backupstore-poll-interval"}
)
# The stores a BackupTarget can be from 1.8 (datastore getBackupTargetPath).
TARGET_SCHEMES_1_8 = frozenset({"s3", "nfs", "cifs", "azblob"})
DATASTORE = "datastore/longhorn.go"
_FORBIDDEN = re.compile(r"[$,]")
_FORBIDDEN_CIFS = re.compile(r"[,]")  # '$' marks a hidden SMB share


def _target_url(m: Manifest, ctx: RuleContext) -> tuple[tuple[str, ...], str | None]:
    """Where the target URL is and its value, for the object that configures one."""
    if m.kind == "Setting":
        if m.name != BACKUP_TARGET_SETTING or ctx.version.has_backup_target_crd:
            return ("value",), None
        return ("value",), m.text(("value",))
    return ("spec", "backupTargetURL"), m.text(("spec", "backupTargetURL"))


@rule(
    "LHB501",
    "backup-target-url",
    Severity.ERROR,
    TARGET_KINDS,
    "a target URL is valid",
    source=(
        manager("types/setting.go", "1.6-1.7"),
        manager(DATASTORE, "1.8-1.12"),
        manager("webhook/resources/backuptarget/validator.go", "1.8-1.12"),
        Citation(BACKUPSTORE, "s3/s3.go", "1.6-1.12"),
    ),
    not_in_policy="BackupTarget and Setting are outside the policy's resources, as the webhook's",
)
def check_target_url(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A BackupTarget's spec.backupTargetURL (the backup-target setting's value before 1.8)
    is empty (no target) or a valid store URL: s3 (with a path, at least `/`), nfs, cifs or
    azblob, and vfs before 1.8 only. Longhorn refuses `$` or `,` in the path (cifs allows
    `$`, a hidden share). Before 1.8 a BackupTarget is Longhorn's copy of the setting, so
    there its findings are warnings."""
    path, url = _target_url(m, ctx)
    if not url:
        return
    copy = m.kind == "BackupTarget" and not ctx.version.has_backup_target_crd
    severity = Severity.WARNING if copy else None
    try:
        target = parse_target(url)
    except InvalidBackupURL as exc:
        yield Finding(path, str(exc), severity)
        return
    if ctx.version.has_backup_target_crd and target.scheme not in TARGET_SCHEMES_1_8:
        yield Finding(
            path,
            f"Longhorn {ctx.version} has no {target.scheme} backup targets; use an s3, nfs, cifs or "
            "azblob URL",
            severity,
        )
    forbidden = (_FORBIDDEN_CIFS if target.scheme == "cifs" else _FORBIDDEN).findall(target.path)
    if forbidden:
        yield Finding(
            path,
            f"the path of {url!r} contains {' and '.join(sorted(set(forbidden)))}, which Longhorn "
            "refuses in a backup target",
            severity,
        )


def _same_store_key(target: BackupTarget) -> tuple[str, str]:
    """What Longhorn compares to call two target URLs the same (getBackupTargetPath): the
    whole URL for s3 and azblob, server and path for nfs and cifs; case-insensitive."""
    if target.scheme in {"nfs", "cifs"}:
        return target.scheme, (target.host + target.path).rstrip("/").lower()
    return target.scheme, target.url.lower()


@rule(
    "LHB502",
    "backup-target-unique",
    Severity.ERROR,
    {"BackupTarget"},
    "no two BackupTargets share a store",
    source=(manager(DATASTORE, "1.8-1.12"),),
    needs_facts=True,
)
def check_target_unique(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """From 1.8 Longhorn refuses a BackupTarget whose URL names the store of another
    BackupTarget."""
    url = m.text(("spec", "backupTargetURL"))
    if not url or not ctx.version.has_backup_target_crd or ctx.facts.backup_targets is None:
        return
    try:
        key = _same_store_key(parse_target(url))
    except InvalidBackupURL:
        return  # LHB501 reports it
    for other in ctx.facts.backup_targets:
        store = other.store
        if other.name != m.name and store is not None and _same_store_key(store) == key:
            yield Finding(
                ("spec", "backupTargetURL"),
                f"backup target {other.name!r} {where(ctx, TARGETS)} already uses {other.url}; one store "
                "is one BackupTarget",
            )
            return


@rule(
    "LHB503",
    "backup-target-setting",
    Severity.ERROR,
    {"Setting"},
    "no backup-target Setting from 1.8",
    source=(
        manager("types/setting.go", "1.8-1.12"),
        manager("webhook/resources/setting/validator.go", "1.8-1.12"),
    ),
    not_in_policy="BackupTarget and Setting are outside the policy's resources, as the webhook's",
)
def check_no_target_setting(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """From 1.8 the backup target is BackupTarget "default": Longhorn refuses a Setting
    named backup-target, backup-target-credential-secret or backupstore-poll-interval."""
    if ctx.version.has_backup_target_crd and m.name in TARGET_SETTINGS_BEFORE_1_8:
        field = {
            "backup-target": "backupTargetURL",
            "backup-target-credential-secret": "credentialSecret",
            "backupstore-poll-interval": "pollInterval",
        }[m.name]
        yield Finding(
            ("metadata", "name"),
            f"Longhorn {ctx.version} has no {m.name} setting; set spec.{field} of BackupTarget "
            "'default' instead",
        )
