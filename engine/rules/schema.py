"""The slice of Longhorn's CRD schemas the rules need: field types and known spec fields.

Written from the CRDs of every version line, v1.6.4 to v1.12.1 (tests/test_schema_tables.py
compares these tables with the vendored tests/data/longhorn/): clone, encryption, selectors
and minNumberOfCopies arrived in v1.7, dataEngine and the BackupBackingImage's backingImage
and backupTargetName in v1.8.
"""

from __future__ import annotations

import re

from longhorn_bi.engine.versions import LonghornVersion

# Expected YAML type per field; "*" stands for every key of a map or item of a list.
STRING, BOOLEAN, INTEGER, MAP, LIST = "string", "boolean", "integer", "map", "list"

COMMON_TYPES: dict[tuple[str, ...], str] = {
    ("apiVersion",): STRING,
    ("kind",): STRING,
    ("metadata",): MAP,
    ("metadata", "name"): STRING,
    ("metadata", "namespace"): STRING,
    ("metadata", "labels"): MAP,
    ("metadata", "labels", "*"): STRING,
    ("metadata", "annotations"): MAP,
    ("metadata", "annotations", "*"): STRING,
    ("spec",): MAP,
}

FIELD_TYPES: dict[str, dict[tuple[str, ...], str]] = {
    "BackingImage": {
        ("spec", "sourceType"): STRING,
        ("spec", "sourceParameters"): MAP,
        ("spec", "sourceParameters", "*"): STRING,
        ("spec", "checksum"): STRING,
        ("spec", "minNumberOfCopies"): INTEGER,
        ("spec", "secret"): STRING,
        ("spec", "secretNamespace"): STRING,
        ("spec", "dataEngine"): STRING,
        ("spec", "diskSelector"): LIST,
        ("spec", "diskSelector", "*"): STRING,
        ("spec", "nodeSelector"): LIST,
        ("spec", "nodeSelector", "*"): STRING,
        ("spec", "disks"): MAP,
        ("spec", "disks", "*"): STRING,
        ("spec", "diskFileSpecMap"): MAP,
        ("spec", "diskFileSpecMap", "*"): MAP,
    },
    "BackupBackingImage": {
        ("spec", "userCreated"): BOOLEAN,
        ("spec", "backingImage"): STRING,
        ("spec", "backupTargetName"): STRING,
        ("spec", "labels"): MAP,
        ("spec", "labels", "*"): STRING,
        ("spec", "syncRequestedAt"): STRING,
    },
    "BackupTarget": {
        ("spec", "backupTargetURL"): STRING,
        ("spec", "credentialSecret"): STRING,
        ("spec", "pollInterval"): STRING,
    },
    "Setting": {("value",): STRING},
}

# Fields the API server keeps; anything else in spec is pruned without a word.
_BACKING_IMAGE_SPEC_V16 = frozenset({"checksum", "disks", "sourceParameters", "sourceType"})
_BACKING_IMAGE_SPEC_V17 = _BACKING_IMAGE_SPEC_V16 | {
    "diskFileSpecMap",
    "diskSelector",
    "minNumberOfCopies",
    "nodeSelector",
    "secret",
    "secretNamespace",
}
_BACKING_IMAGE_SPEC_V18 = _BACKING_IMAGE_SPEC_V17 | {"dataEngine"}
_BACKUP_SPEC_V16 = frozenset({"labels", "syncRequestedAt", "userCreated"})
_BACKUP_SPEC_V18 = _BACKUP_SPEC_V16 | {"backingImage", "backupTargetName"}


def known_spec_fields(kind: str, version: LonghornVersion) -> frozenset[str] | None:
    """The spec fields of `kind` in `version`, or None when we do not check that kind."""
    if kind == "BackingImage":
        if version.minor >= 8:
            return _BACKING_IMAGE_SPEC_V18
        return _BACKING_IMAGE_SPEC_V17 if version.minor == 7 else _BACKING_IMAGE_SPEC_V16
    if kind == "BackupBackingImage":
        return _BACKUP_SPEC_V18 if version.minor >= 8 else _BACKUP_SPEC_V16
    return None


SOURCE_TYPES_V16 = ("download", "upload", "export-from-volume", "restore")
SOURCE_TYPES_V17 = (*SOURCE_TYPES_V16, "clone")


def source_types(version: LonghornVersion) -> tuple[str, ...]:
    return SOURCE_TYPES_V17 if version.has_clone_source else SOURCE_TYPES_V16


# sourceParameters a user writes per source type. Longhorn's mutator adds a few of its own
# on the stored object (an UPDATE carries them), so those are known too.
SOURCE_PARAMETERS: dict[str, frozenset[str]] = {
    "download": frozenset({"url"}),
    "upload": frozenset(),
    "export-from-volume": frozenset({"volume-name", "export-type"}),
    "restore": frozenset({"backup-url", "concurrent-limit", "backup-target-name"}),
    "clone": frozenset(
        {"backing-image", "encryption", "secret", "secret-namespace", "backing-image-uuid"}
    ),
}
SYSTEM_SOURCE_PARAMETERS = frozenset({"data-engine", "file-type"})


def cel_list(values: tuple[str, ...]) -> str:
    """A CEL list literal of plain strings (no quote or backslash in them)."""
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


# A value a message echoes is cut to this many characters: the CRDs bound no string, and a
# message that copies a 3 MiB value costs most of a CEL call's limit (docs/policy.md).
MAX_CEL_SHOWN = 100


def cel_shown(value: str) -> str:
    """CEL: `value` (a string expression) as a message shows it, cut to MAX_CEL_SHOWN."""
    return (
        f"(size({value}) <= {MAX_CEL_SHOWN} ? {value} : "
        f"{value}.substring(0, {MAX_CEL_SHOWN}) + '...')"
    )


def cel_string(text: str) -> str:
    """A CEL string literal of any text."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def cel_regex(pattern: re.Pattern[str]) -> str:
    """A CEL (RE2) string literal of a Python pattern written in their common subset, anchored
    as `match` anchors it (`\\Z` becomes `$`, which RE2 reads as the end of the text)."""
    body = pattern.pattern.removeprefix("^").removesuffix("\\Z")
    if "'" in body:
        raise ValueError(f"{pattern.pattern!r} needs escaping in CEL")
    return "'^" + body.replace("\\", "\\\\") + "$'"
