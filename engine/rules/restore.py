"""Rules of a restore BackingImage: Longhorn's own webhook checks none of these."""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.names import is_valid_name, name_problem
from longhorn_bi.engine.rules.base import Finding, Manifest, RuleContext, Severity, rule

BI = {"BackingImage"}
PARAMS = ("spec", "sourceParameters")
RESTORE = {"restore"}


@rule(
    "LHB201",
    "restore-backup-url",
    Severity.ERROR,
    BI,
    "backup-url is a well-formed backup URL",
    sources=RESTORE,
)
def check_backup_url(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A restore needs `backup-url`: a supported target (s3, nfs, cifs, azblob, vfs) plus
    `?backingImage=<name>`, as found in the BackupBackingImage's status.url."""
    if m.source_type != "restore":
        return
    url = m.source_parameters.get("backup-url")
    if url is None:
        if m.raw_source_parameters.get("backup-url") is None:
            yield Finding(
                PARAMS,
                "a restore needs sourceParameters.backup-url; copy status.url of the "
                "BackupBackingImage (kubectl longhorn-bi restore --from-backup does it for you)",
            )
        return
    if m.backup_url_error is not None:
        yield Finding((*PARAMS, "backup-url"), str(m.backup_url_error))


@rule(
    "LHB202",
    "restore-concurrent-limit",
    Severity.ERROR,
    BI,
    "concurrent-limit is an integer >= 1",
    sources=RESTORE,
)
def check_concurrent_limit(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`concurrent-limit` is a string holding a whole number of at least 1: at 0 Longhorn
    starts no worker and the restore never progresses. Leave it out to use the
    backup-concurrent-limit setting."""
    if m.source_type != "restore":
        return
    value = m.source_parameters.get("concurrent-limit")
    if value is None:
        return
    if not value.isdigit() or not value.isascii():
        yield Finding(
            (*PARAMS, "concurrent-limit"),
            f'concurrent-limit {value!r} is not a whole number; write a quoted integer such as "2"',
        )
    elif int(value) < 1:
        yield Finding(
            (*PARAMS, "concurrent-limit"),
            f'concurrent-limit is "{value}": Longhorn then starts no worker and the restore hangs; '
            'set "1" or more, or leave it out for the backup-concurrent-limit setting',
        )


@rule(
    "LHB203",
    "restore-backup-target-name",
    Severity.ERROR,
    BI,
    "backup-target-name fits the version",
    sources=RESTORE,
)
def check_restore_target_name(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`backup-target-name` exists from Longhorn 1.8 and must be a valid name; before 1.8
    there is one backup target and the parameter would be ignored."""
    if m.source_type != "restore" or "backup-target-name" not in m.source_parameters:
        return
    value = m.source_parameters["backup-target-name"]
    path = (*PARAMS, "backup-target-name")
    if not ctx.version.restore_has_backup_target_name:
        yield Finding(
            path,
            f"backup-target-name needs Longhorn 1.8 or later; Longhorn {ctx.version} restores from "
            "the backup-target setting, so remove it",
        )
    elif value and not is_valid_name(value):
        yield Finding(path, f"backup-target-name {name_problem(value)}")


@rule(
    "LHB204",
    "restore-checksum-recommended",
    Severity.WARNING,
    BI,
    "a restore states its checksum",
    sources=RESTORE,
)
def check_restore_checksum(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Without `spec.checksum` Longhorn takes whatever it restored as the truth; give the
    backup's checksum (status.checksum of the BackupBackingImage) so a damaged backup fails."""
    # Empty is no checksum to Longhorn too; a wrong type is LHB005's to report.
    if m.source_type == "restore" and m.spec.get("checksum") in (None, ""):
        yield Finding(
            ("spec",),
            "no spec.checksum: Longhorn will accept whatever it restores; set the backup's "
            "SHA-512 (status.checksum of the BackupBackingImage)",
        )
