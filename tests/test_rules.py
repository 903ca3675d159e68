"""Every rule of the rule set, with cases that break it and cases that satisfy it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from longhorn_bi.engine.facts import (
    BackingImageFact,
    BackupFact,
    BackupTargetFact,
    ClusterFacts,
    VolumeFact,
)
from longhorn_bi.engine.rules import (
    MAX_FINDINGS_PER_RULE,
    RULES,
    RuleContext,
    Severity,
    evaluate,
)
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

CASES = [
    bad("LHB001", "v1beta1 on 1.9", edit(DOWNLOAD, apiVersion="longhorn.io/v1beta1"), version=V19),
    bad(
        "LHB001",
        "v1beta1 still served on 1.8",
        edit(DOWNLOAD, apiVersion="longhorn.io/v1beta1"),
        version=V18,
        severity=Severity.WARNING,
    ),
    bad("LHB001", "v1beta1 backup", edit(BACKUP, apiVersion="longhorn.io/v1beta1"), version=V18),
    bad("LHB001", "missing", edit(DOWNLOAD, apiVersion=DELETE)),
    good("LHB001", "v1beta2", DOWNLOAD),
    bad("LHB002", "other namespace", edit(BACKUP, metadata__namespace="default")),
    bad(
        "LHB002",
        "no namespace",
        edit(BACKUP, metadata__namespace=DELETE),
        severity=Severity.WARNING,
    ),
    good("LHB002", "longhorn-system", BACKUP),
    bad(
        "LHB003",
        "upper case is lowered",
        edit(DOWNLOAD, metadata__name="Parrot"),
        severity=Severity.WARNING,
    ),
    bad(
        "LHB003",
        "over 40 characters is cut",
        edit(DOWNLOAD, metadata__name="p" * 41),
        severity=Severity.WARNING,
    ),
    bad("LHB003", "upper case backup", edit(BACKUP, metadata__name="Parrot")),
    bad("LHB003", "invalid once lowered", edit(DOWNLOAD, metadata__name="Parrot!")),
    bad("LHB003", "one character", edit(DOWNLOAD, metadata__name="p")),
    bad("LHB003", "final newline", edit(DOWNLOAD, metadata__name="parrot\n")),
    bad("LHB003", "missing", edit(DOWNLOAD, metadata__name=DELETE)),
    # The API server wants a DNS-1123 subdomain, after Longhorn's mutator lowered the name.
    bad("LHB003", "'_' once lowered", edit(DOWNLOAD, metadata__name="Ubuntu_Image")),
    bad("LHB003", "'_' in a backup", edit(BACKUP, metadata__name="parrot_1")),
    bad("LHB003", "backup ending in '-'", edit(BACKUP, metadata__name="parrot-")),
    good("LHB003", "parrot", DOWNLOAD),
    good("LHB003", "one-character backup (Longhorn checks none)", edit(BACKUP, metadata__name="p")),
    bad("LHB004", "bad key", edit(DOWNLOAD, metadata__labels={"bad key": "x"})),
    bad("LHB004", "long value", edit(DOWNLOAD, metadata__labels={"a": "x" * 64})),
    bad("LHB004", "final newline", edit(DOWNLOAD, metadata__labels={"a/b": "x\n"})),
    bad("LHB004", "backup label key", edit(BACKUP, spec__labels={"use case": "test"})),
    bad("LHB004", "empty backup label", edit(BACKUP, spec__labels={"usecase": ""})),
    good("LHB004", "free-text backup label", edit(BACKUP, spec__labels={"note": "weekly, keep!"})),
    good(
        "LHB004", "valid labels", edit(BACKUP, metadata__labels={"app.kubernetes.io/name": "demo"})
    ),
    bad("LHB005", "integer concurrent-limit", params(RESTORE, concurrent_limit=2)),
    bad("LHB005", "string userCreated", edit(BACKUP, spec__userCreated="true")),
    bad("LHB005", "string minNumberOfCopies", edit(DOWNLOAD, spec__minNumberOfCopies="2")),
    bad("LHB005", "boolean label", edit(BACKUP, spec__labels={"enabled": True})),
    bad("LHB005", "spec is a list", edit(BACKUP, spec=["userCreated"])),
    good("LHB005", "string concurrent-limit", RESTORE),
    bad("LHB006", "misspelt field", edit(DOWNLOAD, spec__sourcetype="download")),
    bad("LHB006", "1.7 field on 1.6", edit(DOWNLOAD, spec__minNumberOfCopies=2), version=V16),
    good("LHB006", "1.7 field on 1.12", edit(DOWNLOAD, spec__minNumberOfCopies=2)),
    bad("LHB101", "missing", edit(DOWNLOAD, spec__sourceType=DELETE)),
    bad("LHB101", "unknown", edit(DOWNLOAD, spec__sourceType="http")),
    bad("LHB101", "clone on 1.6", CLONE, version=V16),
    good("LHB101", "clone on 1.7", CLONE, version=V17),
    bad("LHB102", "misspelt key", with_param(RESTORE, "concurrent_limit", "2")),
    bad(
        "LHB102",
        "upload takes none",
        {**DOWNLOAD, "spec": {"sourceType": "upload", "sourceParameters": {"size": "1"}}},
    ),
    good("LHB102", "known keys", RESTORE),
    bad("LHB103", "upper case", edit(DOWNLOAD, spec__checksum=CHECKSUM.upper())),
    bad("LHB103", "sha256", edit(DOWNLOAD, spec__checksum="a" * 64)),
    bad("LHB103", "truncated", edit(DOWNLOAD, spec__checksum=CHECKSUM[:-1])),
    bad("LHB103", "not hex", edit(DOWNLOAD, spec__checksum="z" * 128)),
    good("LHB103", "final newline is trimmed", edit(DOWNLOAD, spec__checksum=CHECKSUM + "\n")),
    bad(
        "LHB103",
        "on a clone, replaced",
        edit(CLONE, spec__checksum="a" * 64),
        severity=Severity.WARNING,
    ),
    good("LHB103", "empty", edit(DOWNLOAD, spec__checksum="")),
    good("LHB103", "sha512", DOWNLOAD),
    bad("LHB104", "no url", params(DOWNLOAD, url=DELETE)),
    bad("LHB104", "ftp", params(DOWNLOAD, url="ftp://example.com/x.raw")),
    bad("LHB104", "localhost", params(DOWNLOAD, url="http://localhost:8000/x.raw")),
    bad("LHB104", "127.0.0.1", params(DOWNLOAD, url="https://127.0.0.1/x.raw")),
    good("LHB104", "https", DOWNLOAD),
    bad("LHB105", "negative", edit(DOWNLOAD, spec__minNumberOfCopies=-1)),
    bad(
        "LHB105",
        "zero is the default on create",
        edit(DOWNLOAD, spec__minNumberOfCopies=0),
        severity=Severity.WARNING,
    ),
    good("LHB105", "one", edit(DOWNLOAD, spec__minNumberOfCopies=1)),
    bad("LHB106", "no source", params(CLONE, backing_image=DELETE)),
    bad("LHB106", "bad encryption", params(CLONE, encryption="rot13")),
    bad("LHB106", "encrypt without secret", params(CLONE, encryption="encrypt")),
    bad(
        "LHB106",
        "encrypt with spec.secret only",
        edit(
            params(CLONE, encryption="encrypt"),
            spec__secret="key",
            spec__secretNamespace="longhorn-system",
        ),
    ),
    good(
        "LHB106",
        "encrypt as documented",
        params(CLONE, encryption="encrypt", secret="key", secret_namespace="longhorn-system"),
    ),
    good("LHB106", "encryption defaults to ignore", params(CLONE, encryption=DELETE)),
    bad(
        "LHB106",
        "decrypt keeping spec.secret",
        edit(
            params(CLONE, encryption="decrypt", secret="key", secret_namespace="longhorn-system"),
            spec__secret="key",
            spec__secretNamespace="longhorn-system",
        ),
        severity=Severity.WARNING,
    ),
    bad("LHB107", "no volume", params(EXPORT, volume_name=DELETE)),
    bad(
        "LHB109",
        "secret changed",
        edit(ENCRYPTED_CLONE, spec__secret="other"),
        previous=ENCRYPTED_CLONE,
    ),
    good("LHB109", "secret kept", ENCRYPTED_CLONE, previous=ENCRYPTED_CLONE),
    good("LHB109", "secret set the first time", ENCRYPTED_CLONE, previous=CLONE),
    bad(
        "LHB109",
        "data engine changed",
        edit(DOWNLOAD, spec__dataEngine="v2"),
        previous=edit(DOWNLOAD, spec__dataEngine="v1"),
    ),
    bad("LHB108", "unknown engine", edit(DOWNLOAD, spec__dataEngine="v3")),
    bad("LHB108", "v2 on 1.12", edit(DOWNLOAD, spec__dataEngine="v2")),
    good("LHB108", "v2 on 1.11", edit(DOWNLOAD, spec__dataEngine="v2"), version=V111),
    good("LHB108", "v1", edit(DOWNLOAD, spec__dataEngine="v1")),
    bad("LHB107", "bad type", params(EXPORT, export_type="zip")),
    good("LHB107", "qcow2", EXPORT),
    bad("LHB201", "missing", params(RESTORE, backup_url=DELETE)),
    bad("LHB201", "empty", params(RESTORE, backup_url="")),
    bad("LHB201", "no backingImage", params(RESTORE, backup_url="s3://backupbucket@us-east-1/")),
    bad("LHB201", "bad scheme", params(RESTORE, backup_url="ftp://host/?backingImage=parrot")),
    bad(
        "LHB201",
        "s3 without a path",
        params(RESTORE, backup_url="s3://backupbucket@us-east-1?backingImage=parrot"),
    ),
    good(
        "LHB201",
        "any bucket name",
        params(RESTORE, backup_url="s3://Backup_Bucket@us-east-1/?backingImage=parrot"),
    ),
    bad("LHB201", "vfs on 1.12", params(RESTORE, backup_url="vfs:///backup?backingImage=parrot")),
    bad(
        "LHB201",
        "vfs on 1.12 with a named target",
        params(
            RESTORE, backup_url="vfs:///backup?backingImage=parrot", backup_target_name="default"
        ),
        severity=Severity.WARNING,
    ),
    good(
        "LHB201",
        "vfs on 1.7",
        params(RESTORE, backup_url="vfs:///backup?backingImage=parrot"),
        version=V17,
    ),
    bad(
        "LHB201",
        "bad image name",
        params(RESTORE, backup_url="s3://backupbucket@us-east-1/?backingImage=Parrot"),
    ),
    bad(
        "LHB201",
        "dot-dot path",
        params(RESTORE, backup_url="vfs:///backup/../etc?backingImage=parrot"),
    ),
    good(
        "LHB201",
        "nfs",
        params(RESTORE, backup_url="nfs://nfs.example:/opt/backupstore?backingImage=parrot"),
    ),
    bad("LHB202", "zero", params(RESTORE, concurrent_limit="0")),
    bad("LHB202", "word", params(RESTORE, concurrent_limit="two")),
    bad("LHB202", "negative", params(RESTORE, concurrent_limit="-1")),
    good("LHB202", "absent", params(RESTORE, concurrent_limit=DELETE)),
    good("LHB202", "four", params(RESTORE, concurrent_limit="4")),
    bad(
        "LHB203",
        "ignored on 1.6",
        params(RESTORE, backup_target_name="default"),
        version=V16,
        severity=Severity.WARNING,
    ),
    bad("LHB203", "invalid name", params(RESTORE, backup_target_name="Default!")),
    good("LHB203", "on 1.12", params(RESTORE, backup_target_name="default")),
    bad("LHB204", "no checksum", edit(RESTORE, spec__checksum=DELETE)),
    bad("LHB204", "empty checksum", edit(RESTORE, spec__checksum="")),
    good("LHB204", "checksum", RESTORE),
    bad("LHB301", "missing", edit(BACKUP, spec__userCreated=DELETE)),
    good("LHB301", "true", BACKUP),
    bad("LHB302", "missing on 1.12", edit(BACKUP, spec__backingImage=DELETE)),
    bad("LHB302", "invalid on 1.12", edit(BACKUP, spec__backingImage="UBUNTU")),
    good("LHB302", "name is the image on 1.6", BACKUP_16, version=V16),
    good("LHB302", "given on 1.12", BACKUP),
    bad("LHB302", "empty on a backup to make", edit(BACKUP, spec__backingImage="")),
    good(
        "LHB302",
        "empty on a failed 1.7 backup the 1.8 upgrade rewrote",
        edit(BACKUP, spec__backingImage="", status={"state": "Error"}),
        version=V18,
    ),
    bad("LHB303", "differs on 1.6", edit(BACKUP_16, spec__backingImage="ubuntu"), version=V16),
    good("LHB303", "same name on 1.6", BACKUP_16, version=V16),
    good("LHB303", "named by Longhorn on 1.8", edit(BACKUP, metadata__name="parrot-6ad3c2f1")),
    bad("LHB304", "pruned on 1.6", edit(BACKUP_16, spec__backupTargetName="default"), version=V16),
    bad("LHB304", "invalid", edit(BACKUP, spec__backupTargetName="Bad Name")),
    bad("LHB304", "final newline", edit(BACKUP, spec__backupTargetName="default\n")),
    good("LHB304", "default", BACKUP),
    bad(
        "LHB401",
        "no such target: Longhorn uses default",
        edit(BACKUP, spec__backupTargetName="offsite"),
        facts=FACTS,
        severity=Severity.WARNING,
    ),
    bad(
        "LHB401",
        "no default target",
        BACKUP,
        facts=ClusterFacts(backup_targets=(), complete=True),
    ),
    bad(
        "LHB401",
        "no URL",
        BACKUP,
        facts=ClusterFacts(backup_targets=(BackupTargetFact("default", ""),)),
    ),
    bad(
        "LHB401",
        "unavailable: refused from 1.10",
        BACKUP,
        version=V110,
        facts=ClusterFacts(backup_targets=(BackupTargetFact("default", "s3://b@r/", False),)),
    ),
    bad(
        "LHB401",
        "unavailable: the backup waits on 1.9",
        BACKUP,
        version=V19,
        facts=ClusterFacts(backup_targets=(BackupTargetFact("default", "s3://b@r/", False),)),
        severity=Severity.WARNING,
    ),
    bad(
        "LHB401",
        "no setting on 1.6",
        BACKUP_16,
        version=V16,
        facts=ClusterFacts(backup_targets=(BackupTargetFact("default", ""),)),
    ),
    bad(
        "LHB401",
        "no default offline",
        BACKUP,
        facts=ClusterFacts(backup_targets=(BackupTargetFact("offsite", "nfs://n:/e"),)),
        severity=Severity.WARNING,
    ),
    good("LHB401", "configured", BACKUP, facts=FACTS),
    good("LHB401", "configured on 1.6", BACKUP_16, version=V16, facts=FACTS_16),
    bad(
        "LHB402",
        "missing in cluster",
        edit(BACKUP, spec__backingImage="ubuntu", metadata__name="ubuntu"),
        facts=FACTS,
    ),
    bad(
        "LHB402",
        "missing in files",
        edit(BACKUP, spec__backingImage="ubuntu", metadata__name="ubuntu"),
        facts=ClusterFacts(backing_images=(BackingImageFact("parrot"),)),
        severity=Severity.WARNING,
    ),
    bad(
        "LHB402",
        "not ready: fails on 1.8",
        BACKUP,
        version=V18,
        facts=ClusterFacts(backing_images=(BackingImageFact("parrot", ready=False),)),
    ),
    bad(
        "LHB402",
        "not ready: Longhorn waits from 1.10",
        BACKUP,
        version=V110,
        facts=ClusterFacts(backing_images=(BackingImageFact("parrot", ready=False),)),
        severity=Severity.WARNING,
    ),
    bad(
        "LHB402",
        "v2 image",
        BACKUP,
        facts=ClusterFacts(backing_images=(BackingImageFact("parrot", data_engine="v2"),)),
    ),
    bad(
        "LHB402",
        "missing on 1.6 (by name)",
        edit(BACKUP_16, metadata__name="ubuntu"),
        version=V16,
        facts=FACTS_16,
        severity=Severity.WARNING,
    ),
    good("LHB402", "exists", BACKUP, facts=FACTS),
    good(
        "LHB402",
        "a completed backup outlives its image",
        edit(BACKUP, spec__backingImage="ubuntu", status={"state": "Completed"}),
        facts=FACTS,
    ),
    good(
        "LHB402",
        "a synced backup outlives its image",
        edit(BACKUP, spec__backingImage="ubuntu", status={"lastSyncedAt": "2026-01-02T03:04:05Z"}),
        facts=FACTS,
    ),
    bad(
        "LHB402",
        "a backup still in progress needs its image",
        edit(BACKUP, spec__backingImage="ubuntu", status={"state": "InProgress"}),
        facts=FACTS,
    ),
    bad("LHB403", "second backup", edit(BACKUP, metadata__name="parrot-2"), facts=FACTS),
    good("LHB403", "same object on update", BACKUP, facts=FACTS),
    good(
        "LHB403",
        "other target",
        edit(BACKUP, metadata__name="parrot-2", spec__backupTargetName="offsite"),
        facts=FACTS,
    ),
    bad(
        "LHB404",
        "1.12: no backup has that URL",
        params(RESTORE, backup_url="s3://otherbucket@us-east-1/?backingImage=parrot"),
        facts=FACTS,
    ),
    bad(
        "LHB404",
        "1.12: no backup has that URL (files)",
        params(RESTORE, backup_url="s3://otherbucket@us-east-1/?backingImage=parrot"),
        facts=FILE_FACTS,
        severity=Severity.WARNING,
    ),
    bad(
        "LHB404",
        "unknown named target",
        params(RESTORE, backup_target_name="offsite"),
        facts=FACTS,
    ),
    bad(
        "LHB404",
        "named target elsewhere",
        params(
            RESTORE, backup_url="nfs://nfs:/e?backingImage=parrot", backup_target_name="default"
        ),
        facts=FACTS,
        severity=Severity.WARNING,
    ),
    bad(
        "LHB404",
        "1.7: another store than the setting's",
        params(RESTORE, backup_url="nfs://nfs:/e?backingImage=parrot"),
        version=V17,
        facts=FACTS_16,
        severity=Severity.WARNING,
    ),
    good("LHB404", "1.12: matches a backup", RESTORE, facts=FACTS),
    good(
        "LHB404",
        "1.12: a backup's URL not known yet",
        params(RESTORE, backup_url="s3://otherbucket@us-east-1/?backingImage=parrot"),
        facts=ClusterFacts(backups=(BackupFact("parrot-1", "parrot"),)),
    ),
    good("LHB404", "on 1.6", RESTORE, version=V16, facts=FACTS_16),
    bad("LHB405", "differs", edit(RESTORE, spec__checksum="0" * 128), facts=FACTS),
    bad(
        "LHB405",
        "differs from the image's",
        edit(RESTORE, spec__checksum="0" * 128),
        facts=ClusterFacts(backing_images=(BackingImageFact("parrot", CHECKSUM),)),
    ),
    good("LHB405", "agrees", RESTORE, facts=FACTS),
    bad("LHB406", "no source", CLONE, facts=ClusterFacts(backing_images=(), complete=True)),
    bad(
        "LHB406",
        "no source in the files",
        CLONE,
        facts=ClusterFacts(backing_images=(BackingImageFact("ubuntu"),)),
        severity=Severity.WARNING,
    ),
    bad(
        "LHB406",
        "re-encrypt",
        params(CLONE, encryption="encrypt", secret="key", secret_namespace="longhorn-system"),
        facts=ClusterFacts(backing_images=(ENCRYPTED,)),
    ),
    bad(
        "LHB406",
        "decrypt a plain image",
        params(CLONE, encryption="decrypt", secret="key", secret_namespace="longhorn-system"),
        facts=FACTS,
    ),
    bad(
        "LHB406",
        "source not ready",
        CLONE,
        facts=ClusterFacts(
            backing_images=(BackingImageFact("parrot", has_status_checksum=False),), complete=True
        ),
    ),
    bad(
        "LHB406",
        "v2 source",
        CLONE,
        facts=ClusterFacts(backing_images=(BackingImageFact("parrot", data_engine="v2"),)),
    ),
    good("LHB406", "plain clone", CLONE, facts=FACTS),
    good(
        "LHB406",
        "decrypt an encrypted image",
        params(CLONE, encryption="decrypt", secret="key", secret_namespace="longhorn-system"),
        facts=ClusterFacts(backing_images=(ENCRYPTED,)),
    ),
    bad(
        "LHB407",
        "s3 without credentials",
        RESTORE,
        facts=ClusterFacts(
            backup_targets=(BackupTargetFact("default", S3_TARGET.url, True, ""),),
            backups=FACTS.backups,
        ),
    ),
    good(
        "LHB407",
        "s3 with credentials",
        RESTORE,
        facts=ClusterFacts(
            backup_targets=(BackupTargetFact("default", S3_TARGET.url, True, "s3-secret"),),
            backups=FACTS.backups,
        ),
    ),
    good(
        "LHB407",
        "nfs needs none",
        params(RESTORE, backup_url="nfs://nfs.example:/export?backingImage=parrot"),
        version=V17,
        facts=ClusterFacts(
            backup_targets=(BackupTargetFact("default", "nfs://nfs.example:/export", True, ""),)
        ),
    ),
    bad(
        "LHB408", "no volume in the cluster", EXPORT, facts=ClusterFacts(volumes=(), complete=True)
    ),
    bad(
        "LHB408",
        "no volume in the files",
        EXPORT,
        facts=ClusterFacts(volumes=(VolumeFact("vol2"),)),
        severity=Severity.WARNING,
    ),
    bad("LHB408", "v2 volume", EXPORT, facts=ClusterFacts(volumes=(V2_VOLUME,))),
    bad(
        "LHB408",
        "v2 volume on 1.7: not refused",
        EXPORT,
        version=V17,
        facts=ClusterFacts(volumes=(V2_VOLUME,)),
        severity=Severity.WARNING,
    ),
    bad(
        "LHB408",
        "faulted volume",
        EXPORT,
        version=V16,
        facts=ClusterFacts(volumes=(VolumeFact("vol1", "v1", "faulted", "img"),), complete=True),
    ),
    bad(
        "LHB408",
        "no engine image yet",
        EXPORT,
        facts=ClusterFacts(volumes=(VolumeFact("vol1", "v1", "unknown", ""),), complete=True),
        severity=Severity.WARNING,
    ),
    good("LHB408", "healthy volume", EXPORT, facts=ClusterFacts(volumes=(VOLUME,), complete=True)),
    good("LHB408", "detached volume", EXPORT, facts=ClusterFacts(volumes=(VolumeFact("vol1"),))),
    good("LHB408", "volumes unknown", EXPORT, facts=FACTS),
    good(
        "LHB408",
        "an UPDATE: Longhorn checks on CREATE",
        EXPORT,
        facts=ClusterFacts(volumes=(), complete=True),
        previous=EXPORT,
    ),
    bad("LHB501", "bad target URL", edit(TARGET, spec__backupTargetURL="s3://")),
    bad("LHB501", "bad setting", edit(SETTING, value="nfs://"), version=V16),
    bad("LHB501", "vfs from 1.8", edit(TARGET, spec__backupTargetURL="vfs:///backup")),
    bad("LHB501", "'$' in an nfs path", edit(TARGET, spec__backupTargetURL="nfs://n:/b$x")),
    bad("LHB501", "',' in a setting", edit(SETTING, value="nfs://n:/a,b"), version=V16),
    good("LHB501", "'$' in a cifs share", edit(TARGET, spec__backupTargetURL="cifs://srv/b$")),
    good("LHB501", "vfs setting on 1.7", edit(SETTING, value="vfs:///backup"), version=V17),
    bad(
        "LHB502",
        "same store as another target",
        edit(
            TARGET, metadata__name="offsite", spec__backupTargetURL="s3://BackupBucket@us-east-1/"
        ),
        facts=FACTS,
    ),
    good("LHB502", "the same target", TARGET, facts=FACTS),
    bad("LHB503", "backup-target setting on 1.8", SETTING, version=V18),
    good("LHB503", "backup-target setting on 1.7", SETTING, version=V17),
    good("LHB501", "s3 target", TARGET),
    good("LHB501", "nfs setting", SETTING, version=V16),
    good("LHB501", "empty URL means no target", edit(TARGET, spec__backupTargetURL="")),
]


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c.rule}-{'bad' if c.fails else 'good'}-{c.title}"
)
def test_rule_case(case: Case) -> None:
    ctx = RuleContext(version=case.version, facts=case.facts, previous=case.previous)
    violations = evaluate(case.obj, ctx)
    found = [v for v in violations if v.rule == case.rule]
    if case.fails:
        assert found, f"{case.rule} did not fire; got {[str(v) for v in violations]}"
        expected = case.severity or next(r.severity for r in RULES if r.id == case.rule)
        assert {v.severity for v in found} == {expected}
        assert all(v.message and v.path for v in found)
    else:
        assert not found, f"{case.rule} fired on a valid object: {[str(v) for v in found]}"


def test_every_rule_has_a_failing_and_a_passing_case() -> None:
    for r in RULES:
        kinds = {c.fails for c in CASES if c.rule == r.id}
        assert kinds == {True, False}, (
            f"{r.id} lacks a {'passing' if True in kinds else 'failing'} case"
        )


def test_rule_ids_are_unique_and_documented() -> None:
    assert len({r.id for r in RULES}) == len(RULES)
    assert len({r.name for r in RULES}) == len(RULES)
    for r in RULES:
        assert r.doc and r.title and r.kinds


def test_user_created_false_gets_no_error_offline_and_no_exemption_with_a_requester() -> None:
    synced = edit(
        BACKUP,
        metadata__name="parrot-0a1b2c3d",
        spec__userCreated=False,
        spec__labels={"not a key": "v"},  # fails the backup: an error from anyone else
    )
    offline = evaluate(synced, RuleContext(facts=FACTS))
    # Offline no requester is known: what Longhorn's sync may have written is not an error.
    assert offline and all(v.severity is Severity.WARNING for v in offline)
    assert any("userCreated: false" in v.message for v in offline)
    # Where the requester is known (the webhook exempts Longhorn by identity first), the
    # field exempts nothing.
    checked = evaluate(synced, RuleContext(facts=FACTS, requester_known=True))
    assert any(v.severity is Severity.ERROR for v in checked)


def test_findings_per_rule_and_object_are_bounded() -> None:
    labels = {f"bad key {i}": "v" for i in range(5000)}
    violations = evaluate(edit(BACKUP, spec__labels=labels), RuleContext(facts=FACTS))
    by_rule = [v for v in violations if v.rule == "LHB004"]
    assert len(by_rule) == MAX_FINDINGS_PER_RULE + 1
    [cut] = [v for v in by_rule if not v.path]
    assert f"stopped after {MAX_FINDINGS_PER_RULE} findings" in cut.message


def test_messages_name_the_field_and_the_fix() -> None:
    [violation] = evaluate(params(RESTORE, concurrent_limit="0"))
    assert violation.path_str == "spec.sourceParameters.concurrent-limit"
    assert '"1" or more' in violation.message


def test_a_wrong_type_is_reported_once() -> None:
    violations = evaluate(params(RESTORE, concurrent_limit=0))
    assert [v.rule for v in violations] == ["LHB005"]
    assert 'quote it: "0"' in violations[0].message


def test_seed_manifests_are_clean_on_1_6() -> None:
    import yaml

    from tests.support import seed_manifests

    for text in seed_manifests():
        assert evaluate(yaml.safe_load(text), RuleContext(version=V16)) == []
