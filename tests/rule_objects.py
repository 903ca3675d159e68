"""The objects, facts and builders the rule cases start from: one valid object of each kind
Longhorn checks, and helpers that change one field of it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from longhorn_bi.engine.facts import (
    BackingImageFact,
    BackupFact,
    BackupTargetFact,
    ClusterFacts,
    VolumeFact,
)
from longhorn_bi.engine.rules import Severity
from longhorn_bi.engine.versions import LonghornVersion

V16 = LonghornVersion(1, 6)
V17 = LonghornVersion(1, 7)
V18 = LonghornVersion(1, 8)
V19 = LonghornVersion(1, 9)
V110 = LonghornVersion(1, 10)
V111 = LonghornVersion(1, 11)
V112 = LonghornVersion(1, 12)
CHECKSUM = "304f3ed30ca6878e9056ee6f1b02b328239f0d0c2c1272840998212f9734b196371560b3b939037e4f4c2884ce457c2cbc9f0621f4f5d1ca983983c8cdf8cd9a"
DELETE = object()
NO_FACTS = ClusterFacts()

DOWNLOAD: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "BackingImage",
    "metadata": {"name": "parrot", "namespace": "longhorn-system"},
    "spec": {
        "sourceType": "download",
        "sourceParameters": {"url": "https://example.com/parrot.raw"},
        "checksum": CHECKSUM,
    },
}
RESTORE: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "BackingImage",
    "metadata": {"name": "parrot-restore", "namespace": "longhorn-system"},
    "spec": {
        "sourceType": "restore",
        "sourceParameters": {
            "backup-url": "s3://backupbucket@us-east-1/?backingImage=parrot",
            "concurrent-limit": "2",
        },
        "checksum": CHECKSUM,
    },
}
BACKUP: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "BackupBackingImage",
    "metadata": {"name": "parrot", "namespace": "longhorn-system"},
    "spec": {
        "backingImage": "parrot",
        "backupTargetName": "default",
        "userCreated": True,
        "labels": {"usecase": "test"},
    },
}
BACKUP_16: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "BackupBackingImage",
    "metadata": {"name": "parrot", "namespace": "longhorn-system"},
    "spec": {"userCreated": True, "labels": {"usecase": "test", "type": "raw"}},
}
CLONE: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "BackingImage",
    "metadata": {"name": "parrot-cloned", "namespace": "longhorn-system"},
    "spec": {
        "sourceType": "clone",
        "sourceParameters": {"backing-image": "parrot", "encryption": "ignore"},
    },
}
EXPORT: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "BackingImage",
    "metadata": {"name": "exported", "namespace": "longhorn-system"},
    "spec": {
        "sourceType": "export-from-volume",
        "sourceParameters": {"volume-name": "vol1", "export-type": "qcow2"},
    },
}
TARGET: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "BackupTarget",
    "metadata": {"name": "default", "namespace": "longhorn-system"},
    "spec": {"backupTargetURL": "s3://backupbucket@us-east-1/", "pollInterval": "5m0s"},
}
SETTING: dict[str, Any] = {
    "apiVersion": "longhorn.io/v1beta2",
    "kind": "Setting",
    "metadata": {"name": "backup-target", "namespace": "longhorn-system"},
    "value": "nfs://nfs.example:/export",
}

S3_TARGET = BackupTargetFact("default", "s3://backupbucket@us-east-1/", available=True)
FACTS = ClusterFacts(
    backup_targets=(S3_TARGET,),
    backing_images=(BackingImageFact("parrot", CHECKSUM, ready=True),),
    backups=(
        BackupFact(
            "parrot",
            "parrot",
            "default",
            "s3://backupbucket@us-east-1/?backingImage=parrot",
            CHECKSUM,
        ),
    ),
    complete=True,
)


def edit(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of `base` with dotted paths set (`spec__sourceType`), or removed with DELETE."""
    obj = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        node = obj
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            node.pop(last, None)
        else:
            node[last] = value
    return obj


def params(base: dict[str, Any], **values: Any) -> dict[str, Any]:
    """`base` with sourceParameters changed; keys use '_' for '-'."""
    obj = copy.deepcopy(base)
    for written, value in values.items():
        key = written.replace("_", "-")
        if value is DELETE:
            obj["spec"]["sourceParameters"].pop(key, None)
        else:
            obj["spec"]["sourceParameters"][key] = value
    return obj


def with_param(base: dict[str, Any], key: str, value: str) -> dict[str, Any]:
    """`base` with one sourceParameters key set exactly as written."""
    obj = copy.deepcopy(base)
    obj["spec"]["sourceParameters"][key] = value
    return obj


@dataclass(frozen=True)
class Case:
    rule: str
    title: str
    obj: dict[str, Any]
    version: LonghornVersion = V112
    facts: ClusterFacts = NO_FACTS
    fails: bool = True
    severity: Severity | None = None  # expected severity when not the rule's default
    previous: dict[str, Any] | None = None  # the stored object of an UPDATE


def bad(rule: str, title: str, obj: dict[str, Any], **kw: Any) -> Case:
    return Case(rule, title, obj, **kw)


def good(rule: str, title: str, obj: dict[str, Any], **kw: Any) -> Case:
    return Case(rule, title, obj, fails=False, **kw)


# The 1.6 line and the seed's restore URL target in the facts of an older cluster.
ENCRYPTED_CLONE = edit(
    params(CLONE, encryption="encrypt", secret="key", secret_namespace="longhorn-system"),
    spec__secret="key",
    spec__secretNamespace="longhorn-system",
)
ENCRYPTED = BackingImageFact("parrot", CHECKSUM, True, secret="key")
FILE_FACTS = ClusterFacts(backups=FACTS.backups)
VOLUME = VolumeFact("vol1", "v1", "healthy", "longhornio/longhorn-engine:v1.12.1")
V2_VOLUME = VolumeFact("vol1", "v2", "healthy", "longhornio/longhorn-engine:v1.12.1")
FACTS_16 = ClusterFacts(
    backup_targets=(BackupTargetFact("default", "s3://backupbucket@us-east-1/"),),
    backing_images=(BackingImageFact("parrot"),),
    backups=(),
)
