"""Manifests of a backup (BackupBackingImage) and of a restore (BackingImage), per version.

These build what the user asked for and nothing more; whether it is valid is the rule
set's job, so a caller evaluates the result before printing or applying it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from longhorn_bi.engine.facts import DEFAULT_TARGET_NAME
from longhorn_bi.engine.rules.base import LONGHORN_NAMESPACE
from longhorn_bi.engine.rules.common import API_VERSION
from longhorn_bi.engine.versions import DEFAULT_VERSION, LonghornVersion


def _metadata(name: str, namespace: str, labels: Mapping[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if labels:
        metadata["labels"] = dict(labels)
    return metadata


def backup_manifest(
    name: str,
    *,
    backing_image: str | None = None,
    backup_target: str | None = None,
    labels: Mapping[str, str] | None = None,
    namespace: str = LONGHORN_NAMESPACE,
    version: LonghornVersion = DEFAULT_VERSION,
) -> dict[str, Any]:
    """A user-created BackupBackingImage named `name`.

    From 1.8 it names its image (default: `name`) and target (default: "default"). Before
    1.8 the backup's name is the image's; an image or target given anyway is kept so that
    the rules can say why it cannot work there.
    """
    spec: dict[str, Any] = {"userCreated": True}
    if version.backup_has_backing_image_field:
        spec["backingImage"] = backing_image or name
        spec["backupTargetName"] = backup_target or DEFAULT_TARGET_NAME
    else:
        if backing_image and backing_image != name:
            spec["backingImage"] = backing_image
        if backup_target:
            spec["backupTargetName"] = backup_target
    if labels:
        spec["labels"] = dict(labels)
    return {
        "apiVersion": API_VERSION,
        "kind": "BackupBackingImage",
        "metadata": _metadata(name, namespace),
        "spec": spec,
    }


def restore_manifest(
    name: str,
    *,
    backup_url: str,
    concurrent_limit: str | None = None,
    checksum: str | None = None,
    backup_target_name: str | None = None,
    namespace: str = LONGHORN_NAMESPACE,
    version: LonghornVersion = DEFAULT_VERSION,
) -> dict[str, Any]:
    """A BackingImage named `name` restored from `backup_url`."""
    parameters: dict[str, str] = {"backup-url": backup_url}
    if concurrent_limit is not None:
        parameters["concurrent-limit"] = concurrent_limit
    if backup_target_name is not None:
        parameters["backup-target-name"] = backup_target_name
    spec: dict[str, Any] = {"sourceType": "restore", "sourceParameters": parameters}
    if checksum is not None:
        spec["checksum"] = checksum
    return {
        "apiVersion": API_VERSION,
        "kind": "BackingImage",
        "metadata": _metadata(name, namespace),
        "spec": spec,
    }
