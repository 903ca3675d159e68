"""Longhorn version lines and the features that differ between them (DESIGN.md §2)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from longhorn_bi.engine.errors import InvalidInput

OLDEST_MINOR = 6
NEWEST_MINOR = 12
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?$")


@dataclass(frozen=True, order=True)
class LonghornVersion:
    """A Longhorn minor release; patch levels do not change what we check."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> LonghornVersion:
        match = _VERSION.match(text.strip())
        if not match:
            raise InvalidInput(
                f"--longhorn-version: {text!r} is not a version",
                hint=f"use one of {', '.join(SUPPORTED_VERSIONS)}",
            )
        version = cls(int(match.group(1)), int(match.group(2)))
        if version.major != 1 or not OLDEST_MINOR <= version.minor <= NEWEST_MINOR:
            raise InvalidInput(
                f"--longhorn-version: Longhorn {version} is not supported",
                hint=f"backing image backups exist from 1.6; use one of {', '.join(SUPPORTED_VERSIONS)}",
            )
        return version

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"

    @property
    def line(self) -> str:
        """The version line whose CRDs and rules apply: "1.6/1.7" or "1.8+"."""
        return "1.6/1.7" if self.minor < 8 else "1.8+"

    @property
    def has_backup_target_crd(self) -> bool:
        """v1.8+ configures targets as BackupTarget objects; earlier lines use a Setting."""
        return self.minor >= 8

    @property
    def backup_has_backing_image_field(self) -> bool:
        """v1.8+ BackupBackingImage names its image in spec.backingImage (and may be named freely)."""
        return self.minor >= 8

    @property
    def restore_has_backup_target_name(self) -> bool:
        return self.minor >= 8

    @property
    def has_clone_source(self) -> bool:
        """sourceType clone (with encryption) appeared in v1.7.0."""
        return self.minor >= 7


SUPPORTED_VERSIONS = tuple(f"1.{minor}" for minor in range(OLDEST_MINOR, NEWEST_MINOR + 1))
DEFAULT_VERSION = LonghornVersion(1, NEWEST_MINOR)
