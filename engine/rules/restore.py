"""Rules of a restore BackingImage (the cluster-dependent ones are in cluster.py)."""

from __future__ import annotations

from collections.abc import Iterator

from longhorn_bi.engine.names import LONGHORN_NAME, MAX_NAME_LENGTH, is_valid_name, name_problem
from longhorn_bi.engine.rules.base import (
    BACKING_IMAGE_MANAGER,
    BACKUPSTORE,
    Cel,
    Citation,
    Finding,
    Manifest,
    RuleContext,
    Severity,
    manager,
    rule,
)
from longhorn_bi.engine.rules.cel_backup_url import cel_certainly_bad, cel_plain
from longhorn_bi.engine.rules.schema import cel_regex, cel_shown

BI = {"BackingImage"}
PARAMS = ("spec", "sourceParameters")
RESTORE = {"restore"}
MUTATOR = "webhook/resources/backingimage/mutator.go"
# The schemes the 1.8+ mutator can match to a backup (getBackupTargetURLAndBackingImageName).
MATCHED_SCHEMES = frozenset({"s3", "nfs", "cifs", "azblob"})
# CEL: the restore's sourceParameters, and whether one is given. Values are strings (the CRD).
_SP = "object.spec.sourceParameters"
_CONCURRENT = f"{_SP}['concurrent-limit']"
_TARGET_NAME = f"{_SP}['backup-target-name']"


def _given(key: str) -> str:
    return f"has({_SP}) && '{key}' in {_SP}"


# Past this many characters a parameter is refused by the policy unread: it bounds the cost of
# the string work (the Python check has no such bound; no real value comes near it).
MAX_CEL_PARAMETER = 4096
_URL = f"{_SP}['backup-url']"
_URL_TRIMMED = f"{_URL}.trim()"
# A vfs URL parse_backup_url accepts; whether backup-target-name is given (trimmed).
_VFS_URL = f"({_URL_TRIMMED}.startsWith('vfs://') && {cel_plain(_URL_TRIMMED)})"
_NAMED = f"({_given('backup-target-name')} && {_TARGET_NAME}.trim() != '')"


@rule(
    "LHB201",
    "restore-backup-url",
    Severity.ERROR,
    BI,
    "backup-url is a well-formed backup URL",
    source=(
        Citation(BACKUPSTORE, "backupbackingimage/backupbackingimage.go", "1.6-1.12"),
        Citation(BACKUPSTORE, "s3/s3.go", "1.6-1.12"),
        manager(MUTATOR, "1.8-1.12"),
    ),
    source_types=RESTORE,
    cel=(
        Cel(
            _given("backup-url"),
            "'a restore needs sourceParameters.backup-url; copy status.url of the "
            "BackupBackingImage (kubectl longhorn-bi restore --from-backup does it for you)'",
            path=PARAMS,
        ),
        # The URL is not echoed: it may carry credentials.
        Cel(
            f"!({_given('backup-url')}) || size({_URL}) > {MAX_CEL_PARAMETER} || "
            f"!{cel_certainly_bad(_URL_TRIMMED)}",
            "'backup-url is not a backup URL: it needs a backupstore target (s3, nfs, cifs, "
            "azblob or vfs://) and ?backingImage=NAME, with no space or control character; copy "
            "status.url of the BackupBackingImage'",
            path=(*PARAMS, "backup-url"),
        ),
        *(
            Cel(
                f"!({_given('backup-url')}) || size({_URL}) > {MAX_CEL_PARAMETER} || "
                f"!{_VFS_URL} || {'!' if named else ''}{_NAMED}",
                "'Longhorn 1.8 and later have no vfs backup targets (s3, nfs, cifs or azblob "
                + (
                    "only); the restore reads from the named target instead'"
                    if named
                    else "only), and its mutator refuses a restore it cannot match to one'"
                ),
                path=(*PARAMS, "backup-url"),
                severity=Severity.WARNING if named else None,
                versions="1.8-1.12",
            )
            for named in (False, True)
        ),
    ),
    # Where the CEL form cannot decide (docs/policy.md): engine/rules/cel_backup_url.py.
    cel_partial=(
        "backup URLs neither certainly bad nor in the plain form Longhorn writes "
        "(%-escapes, ports, IPv6 hosts, more query parameters), and those over "
        f"{MAX_CEL_PARAMETER} characters"
    ),
)
def check_backup_url(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A restore needs `backup-url`: a target URL (s3, nfs, cifs, azblob; vfs only before
    1.8) plus `?backingImage=<name>`, as found in the BackupBackingImage's status.url. From
    1.8 Longhorn's mutator refuses a vfs URL unless backup-target-name is given (and no
    BackupTarget can be vfs, so it is a warning then)."""
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
        return
    restore = m.backup_url
    if (
        restore is not None
        and ctx.version.has_backup_target_crd
        and restore.target.scheme not in MATCHED_SCHEMES
    ):
        named = bool(m.source_parameters.get("backup-target-name"))
        yield Finding(
            (*PARAMS, "backup-url"),
            f"Longhorn {ctx.version} has no {restore.target.scheme} backup targets (s3, nfs, cifs "
            "or azblob only)"
            + (
                "; the restore reads from the named target instead"
                if named
                else ", and its mutator refuses a restore it cannot match to one"
            ),
            Severity.WARNING if named else None,
        )


@rule(
    "LHB202",
    "restore-concurrent-limit",
    Severity.ERROR,
    BI,
    "concurrent-limit is an integer >= 1",
    source=(
        manager(MUTATOR, "1.6-1.12"),
        Citation(BACKING_IMAGE_MANAGER, "pkg/datasource/service.go", "1.6-1.12"),
        Citation(BACKUPSTORE, "backupbackingimage/backupbackingimage.go", "1.6-1.12"),
    ),
    source_types=RESTORE,
    cel=(
        Cel(
            f"!({_given('concurrent-limit')}) || (size({_SP}['concurrent-limit']) <= "
            f"{MAX_CEL_PARAMETER} && {_SP}['concurrent-limit'].trim().matches('^[0-9]*[1-9][0-9]*$'))",
            f"'concurrent-limit ' + {cel_shown(_CONCURRENT)} + ' is not a whole number of at "
            "least 1 (at 0 Longhorn starts no worker and the restore hangs); write a quoted "
            'integer such as "2", or leave it out for the backup-concurrent-limit setting\'',
            path=(*PARAMS, "concurrent-limit"),
        ),
    ),
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
    source=(
        manager(MUTATOR, "1.8-1.12"),
        manager("controller/backing_image_data_source_controller.go", "1.6-1.12"),
    ),
    source_types=RESTORE,
    cel=(
        Cel(
            f"!({_given('backup-target-name')})",
            "'backup-target-name needs Longhorn 1.8 or later; this Longhorn ignores it and "
            "restores with the backup-target setting\\'s credentials, so remove it'",
            path=(*PARAMS, "backup-target-name"),
            severity=Severity.WARNING,
            versions="1.6-1.7",
        ),
        Cel(
            f"!({_given('backup-target-name')}) || (size({_SP}['backup-target-name']) <= "
            f"{MAX_CEL_PARAMETER} && ({_SP}['backup-target-name'].trim() == '' || "
            f"(size({_SP}['backup-target-name'].trim()) <= {MAX_NAME_LENGTH} && "
            f"{_SP}['backup-target-name'].trim().matches({cel_regex(LONGHORN_NAME)}))))",
            f"'backup-target-name ' + {cel_shown(_TARGET_NAME)} + ' is not a valid name: 2 "
            f"to {MAX_NAME_LENGTH} lower-case letters, digits, -, _ or ., starting with a "
            "letter or digit'",
            path=(*PARAMS, "backup-target-name"),
            versions="1.8-1.12",
        ),
    ),
)
def check_restore_target_name(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`backup-target-name` exists from Longhorn 1.8 and must be a valid name. Before 1.8
    Longhorn restores with the one target's credentials and ignores the parameter: a
    warning."""
    if m.source_type != "restore" or "backup-target-name" not in m.source_parameters:
        return
    value = m.source_parameters["backup-target-name"]
    path = (*PARAMS, "backup-target-name")
    if not ctx.version.restore_has_backup_target_name:
        yield Finding(
            path,
            f"backup-target-name needs Longhorn 1.8 or later; Longhorn {ctx.version} ignores it "
            "and restores with the backup-target setting's credentials, so remove it",
            Severity.WARNING,
        )
    elif value and not is_valid_name(value):
        yield Finding(path, f"backup-target-name {name_problem(value)}")


@rule(
    "LHB204",
    "restore-checksum-recommended",
    Severity.WARNING,
    BI,
    "a restore states its checksum",
    source=(manager("controller/backing_image_data_source_controller.go", "1.6-1.12"),),
    source_types=RESTORE,
    cel=(
        Cel(
            "has(object.spec.checksum) && object.spec.checksum != ''",
            "'no spec.checksum: Longhorn will accept whatever it restores; set the backup\\'s "
            "SHA-512 (status.checksum of the BackupBackingImage)'",
            path=("spec",),
        ),
    ),
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
