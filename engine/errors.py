"""The small typed hierarchy of errors a user can meet.

Every module raises one of these; the shells (CLI, webhook) turn them into a message and an
exit code or HTTP answer in exactly one place each. Messages name the field and the fix.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Process exit codes of `kubectl longhorn-bi`."""

    OK = 0
    FAILURE = 1  # the command ran and found a problem (invalid manifest, failed transfer)
    USAGE = 2  # the command was asked something it cannot do (bad flag, missing path)


class LonghornBIError(Exception):
    """Base of every expected error. `hint` says how to fix it, when we know."""

    exit_code: ExitCode = ExitCode.FAILURE

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class InvalidInput(LonghornBIError):
    """A value given by the user is malformed: a name, a URL, a flag."""

    exit_code = ExitCode.USAGE


class InvalidBackupURL(InvalidInput):
    """A backup target or backing-image backup URL that cannot be used."""


class UnsupportedFeature(LonghornBIError):
    """Well formed, but not something this version can do (cifs://, azblob:// transfers)."""

    exit_code = ExitCode.USAGE


class ManifestError(LonghornBIError):
    """A manifest file that cannot be read or parsed."""

    def __init__(
        self,
        message: str,
        *,
        source: str = "",
        line: int = 0,
        column: int = 0,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.source = source
        self.line = line
        self.column = column


class NotFound(LonghornBIError):
    """A backup, block, file or cluster object that does not exist."""


class IntegrityError(LonghornBIError):
    """Data that does not match its checksum: a corrupt block or a wrong image."""


class BackupstoreError(LonghornBIError):
    """The backupstore could not be read or written."""


class LockConflict(BackupstoreError):
    """Another backup, restore or delete holds the backing image's lock."""


class ClusterError(LonghornBIError):
    """The Kubernetes API refused or failed a request."""


class Forbidden(ClusterError):
    """RBAC denies the request (403): a caller may do without what it asked for."""


class WaitFailed(LonghornBIError):
    """A followed resource reached an error state or the wait timed out."""
