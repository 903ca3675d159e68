"""Longhorn version lines and the features that differ between them, each read from Longhorn's
CRDs (tests/data/longhorn/) and longhorn-manager at the release tags v1.6.4 .. v1.12.1."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from longhorn_bi.engine.errors import InvalidInput

OLDEST_MINOR = 6
NEWEST_MINOR = 12
_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+].*)?\Z")


@dataclass(frozen=True, order=True)
class LonghornVersion:
    """A Longhorn minor release; patch levels do not change what we check."""

    major: int
    minor: int
    # The features that differ between lines, as plain attributes set once (rules read them
    # on every review, where a property is a call each time).
    # v1.8+ configures targets as BackupTarget objects; earlier lines use a Setting.
    has_backup_target_crd: bool = field(init=False, repr=False, compare=False)
    # v1.8+ BackupBackingImage names its image in spec.backingImage (and may be named freely).
    backup_has_backing_image_field: bool = field(init=False, repr=False, compare=False)
    # v1.8+ restores take sourceParameters.backup-target-name.
    restore_has_backup_target_name: bool = field(init=False, repr=False, compare=False)
    # sourceType clone (with encryption) appeared in v1.7.0.
    has_clone_source: bool = field(init=False, repr=False, compare=False)
    # v1.6-v1.8 CRDs still serve v1beta1 of BackingImage, BackupTarget and Setting.
    serves_v1beta1: bool = field(init=False, repr=False, compare=False)
    # v1.8+ BackingImage has spec.dataEngine (v1 or v2).
    has_data_engine: bool = field(init=False, repr=False, compare=False)
    # v1.9.2+ waits for a ready copy before backing up (1.9.0/1.9.1 failed the backup), so
    # from the 1.9 line a missing ready copy is no certain failure.
    backup_waits_for_ready_copy: bool = field(init=False, repr=False, compare=False)
    # v1.10+ deny a backup to an unavailable target (so do 1.9.2 and 1.9.3, but not 1.9.0 and
    # 1.9.1: the 1.9 line warns, never refusing what a 1.9.x accepts).
    rejects_backup_to_unavailable_target: bool = field(init=False, repr=False, compare=False)
    # v1.8+ deny exporting a BackingImage from a v2 volume.
    rejects_export_from_v2_volume: bool = field(init=False, repr=False, compare=False)
    # v1.12+ deny creating a v2 BackingImage.
    rejects_v2_backing_image: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        line = (self.major, self.minor)
        since_1_8 = line >= (1, 8)
        for name, value in (
            ("has_backup_target_crd", since_1_8),
            ("backup_has_backing_image_field", since_1_8),
            ("restore_has_backup_target_name", since_1_8),
            ("has_clone_source", line >= (1, 7)),
            ("serves_v1beta1", line <= (1, 8)),
            ("has_data_engine", since_1_8),
            ("backup_waits_for_ready_copy", line >= (1, 9)),
            ("rejects_backup_to_unavailable_target", line >= (1, 10)),
            ("rejects_export_from_v2_volume", since_1_8),
            ("rejects_v2_backing_image", line >= (1, 12)),
        ):
            object.__setattr__(self, name, value)

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


SUPPORTED_VERSIONS = tuple(f"1.{minor}" for minor in range(OLDEST_MINOR, NEWEST_MINOR + 1))
DEFAULT_VERSION = LonghornVersion(1, NEWEST_MINOR)


def detect_version(crds: Iterable[Mapping[str, Any]]) -> LonghornVersion:
    """The Longhorn version of installed CRDs (CustomResourceDefinition objects).

    The chart labels CRDs with app.kubernetes.io/version; without it the schema tells the
    line: spec.backingImage in BackupBackingImage means 1.8+, clone among the source types
    means 1.7, else 1.6.
    """
    crd_list = [crd for crd in crds if isinstance(crd, Mapping)]
    for crd in crd_list:
        labels = crd.get("metadata", {}).get("labels") or {}
        label = labels.get("app.kubernetes.io/version") if isinstance(labels, Mapping) else None
        if isinstance(label, str) and str(crd.get("metadata", {}).get("name", "")).endswith(
            ".longhorn.io"
        ):
            try:
                return LonghornVersion.parse(label)
            except InvalidInput:
                continue

    def spec_properties(plural: str) -> Mapping[str, Any]:
        for crd in crd_list:
            if crd.get("metadata", {}).get("name") == f"{plural}.longhorn.io":
                for served in crd.get("spec", {}).get("versions", []):
                    if served.get("name") == "v1beta2":
                        schema = served.get("schema", {}).get("openAPIV3Schema", {})
                        spec = schema.get("properties", {}).get("spec", {})
                        return spec.get("properties", {}) or {}
        return {}

    if "backingImage" in spec_properties("backupbackingimages"):
        return LonghornVersion(1, 8)
    source_type = spec_properties("backingimages").get("sourceType", {})
    if "clone" in (source_type.get("enum") or []):
        return LonghornVersion(1, 7)
    if not spec_properties("backingimages"):
        raise InvalidInput(
            "Longhorn's CRDs are not installed (no backingimages.longhorn.io)",
            hint="install Longhorn 1.6 or later, or give --longhorn-version",
        )
    return LonghornVersion(1, 6)
