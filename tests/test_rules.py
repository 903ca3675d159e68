"""Every rule of the rule set, with cases that break it and cases that satisfy it."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from longhorn_bi.engine.facts import BackingImageFact, BackupFact, BackupTargetFact, ClusterFacts
from longhorn_bi.engine.rules import RULES, RuleContext, Severity, evaluate
from longhorn_bi.engine.versions import LonghornVersion

V16 = LonghornVersion(1, 6)
V17 = LonghornVersion(1, 7)
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


def bad(rule: str, title: str, obj: dict[str, Any], **kw: Any) -> Case:
    return Case(rule, title, obj, **kw)


def good(rule: str, title: str, obj: dict[str, Any], **kw: Any) -> Case:
    return Case(rule, title, obj, fails=False, **kw)


# The 1.6 line and the seed's restore URL target in the facts of an older cluster.
FACTS_16 = ClusterFacts(
    backup_targets=(BackupTargetFact("default", "s3://backupbucket@us-east-1/"),),
    backing_images=(BackingImageFact("parrot"),),
    backups=(),
)

CASES = [
    bad("LHB001", "v1beta1", edit(DOWNLOAD, apiVersion="longhorn.io/v1beta1")),
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
    bad("LHB003", "upper case", edit(DOWNLOAD, metadata__name="Parrot")),
    bad("LHB003", "one character", edit(DOWNLOAD, metadata__name="p")),
    bad("LHB003", "final newline", edit(DOWNLOAD, metadata__name="parrot\n")),
    bad("LHB003", "missing", edit(DOWNLOAD, metadata__name=DELETE)),
    good("LHB003", "parrot", DOWNLOAD),
    bad("LHB004", "bad key", edit(DOWNLOAD, metadata__labels={"bad key": "x"})),
    bad("LHB004", "long value", edit(DOWNLOAD, metadata__labels={"a": "x" * 64})),
    bad("LHB004", "final newline", edit(DOWNLOAD, metadata__labels={"a/b": "x\n"})),
    bad("LHB004", "backup label", edit(BACKUP, spec__labels={"usecase": "not ok!"})),
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
    bad("LHB103", "final newline", edit(DOWNLOAD, spec__checksum=CHECKSUM + "\n")),
    good("LHB103", "empty", edit(DOWNLOAD, spec__checksum="")),
    good("LHB103", "sha512", DOWNLOAD),
    bad("LHB104", "no url", params(DOWNLOAD, url=DELETE)),
    bad("LHB104", "ftp", params(DOWNLOAD, url="ftp://example.com/x.raw")),
    bad("LHB104", "localhost", params(DOWNLOAD, url="http://localhost:8000/x.raw")),
    bad("LHB104", "127.0.0.1", params(DOWNLOAD, url="https://127.0.0.1/x.raw")),
    good("LHB104", "https", DOWNLOAD),
    bad("LHB105", "zero", edit(DOWNLOAD, spec__minNumberOfCopies=0)),
    good("LHB105", "one", edit(DOWNLOAD, spec__minNumberOfCopies=1)),
    bad("LHB106", "no source", params(CLONE, backing_image=DELETE)),
    bad("LHB106", "bad encryption", params(CLONE, encryption="rot13")),
    bad("LHB106", "encrypt without secret", params(CLONE, encryption="encrypt")),
    good(
        "LHB106",
        "encrypt with secret",
        edit(
            params(CLONE, encryption="encrypt"),
            spec__secret="key",
            spec__secretNamespace="longhorn-system",
        ),
    ),
    bad("LHB107", "no volume", params(EXPORT, volume_name=DELETE)),
    bad("LHB107", "bad type", params(EXPORT, export_type="zip")),
    good("LHB107", "qcow2", EXPORT),
    bad("LHB201", "missing", params(RESTORE, backup_url=DELETE)),
    bad("LHB201", "empty", params(RESTORE, backup_url="")),
    bad("LHB201", "no backingImage", params(RESTORE, backup_url="s3://backupbucket@us-east-1/")),
    bad("LHB201", "bad scheme", params(RESTORE, backup_url="ftp://host/?backingImage=parrot")),
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
    bad("LHB203", "on 1.6", params(RESTORE, backup_target_name="default"), version=V16),
    bad("LHB203", "invalid name", params(RESTORE, backup_target_name="Default!")),
    good("LHB203", "on 1.12", params(RESTORE, backup_target_name="default")),
    bad("LHB204", "no checksum", edit(RESTORE, spec__checksum=DELETE)),
    bad("LHB204", "empty checksum", edit(RESTORE, spec__checksum="")),
    good("LHB204", "checksum", RESTORE),
    bad("LHB301", "missing", edit(BACKUP, spec__userCreated=DELETE)),
    good("LHB301", "true", BACKUP),
    bad("LHB302", "missing on 1.12", edit(BACKUP, spec__backingImage=DELETE)),
    bad("LHB302", "differs on 1.6", edit(BACKUP_16, spec__backingImage="ubuntu"), version=V16),
    bad("LHB302", "invalid on 1.12", edit(BACKUP, spec__backingImage="UBUNTU")),
    good("LHB302", "name is the image on 1.6", BACKUP_16, version=V16),
    good("LHB302", "given on 1.12", BACKUP),
    bad("LHB303", "named otherwise on 1.12", edit(BACKUP, metadata__name="parrot-backup")),
    good("LHB303", "same name", BACKUP),
    bad("LHB304", "on 1.6", edit(BACKUP_16, spec__backupTargetName="default"), version=V16),
    bad("LHB304", "invalid", edit(BACKUP, spec__backupTargetName="Bad Name")),
    bad("LHB304", "final newline", edit(BACKUP, spec__backupTargetName="default\n")),
    good("LHB304", "default", BACKUP),
    bad("LHB401", "no such target", edit(BACKUP, spec__backupTargetName="offsite"), facts=FACTS),
    bad(
        "LHB401",
        "no URL",
        BACKUP,
        facts=ClusterFacts(backup_targets=(BackupTargetFact("default", ""),)),
    ),
    bad(
        "LHB401",
        "unavailable",
        BACKUP,
        facts=ClusterFacts(backup_targets=(BackupTargetFact("default", "s3://b@r/", False),)),
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
        "missing offline",
        edit(BACKUP, spec__backupTargetName="offsite"),
        facts=ClusterFacts(backup_targets=(S3_TARGET,)),
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
        "not ready",
        BACKUP,
        facts=ClusterFacts(backing_images=(BackingImageFact("parrot", ready=False),)),
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
        "unknown store",
        params(RESTORE, backup_url="s3://otherbucket@us-east-1/?backingImage=parrot"),
        facts=FACTS,
    ),
    bad(
        "LHB404", "unknown named target", params(RESTORE, backup_target_name="offsite"), facts=FACTS
    ),
    bad(
        "LHB404",
        "named target elsewhere",
        params(
            RESTORE, backup_url="nfs://nfs:/e?backingImage=parrot", backup_target_name="default"
        ),
        facts=FACTS,
    ),
    good("LHB404", "configured store", RESTORE, facts=FACTS),
    good(
        "LHB404",
        "trailing slash differences",
        params(RESTORE, backup_url="s3://backupbucket@us-east-1//?backingImage=parrot"),
        facts=FACTS,
    ),
    good("LHB404", "on 1.6", RESTORE, version=V16, facts=FACTS_16),
    bad("LHB405", "differs", edit(RESTORE, spec__checksum="0" * 128), facts=FACTS),
    good("LHB405", "agrees", RESTORE, facts=FACTS),
    bad("LHB501", "bad target URL", edit(TARGET, spec__backupTargetURL="s3://")),
    bad("LHB501", "bad setting", edit(SETTING, value="nfs://"), version=V16),
    good("LHB501", "s3 target", TARGET),
    good("LHB501", "nfs setting", SETTING, version=V16),
    good("LHB501", "empty URL means no target", edit(TARGET, spec__backupTargetURL="")),
]


@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c.rule}-{'bad' if c.fails else 'good'}-{c.title}"
)
def test_rule_case(case: Case) -> None:
    violations = evaluate(case.obj, RuleContext(version=case.version, facts=case.facts))
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


def test_objects_longhorn_creates_are_never_flagged() -> None:
    synced = edit(
        BACKUP,
        metadata__name="parrot-0a1b2c3d",
        spec__userCreated=False,
        spec__backupTargetName="nowhere",
    )
    assert evaluate(synced, RuleContext(facts=FACTS)) == []


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
