"""Facts from objects, and Longhorn version parsing and detection."""

from __future__ import annotations

import pytest

from longhorn_bi.engine.errors import InvalidInput
from longhorn_bi.engine.facts import (
    BackingImageFact,
    BackupTargetFact,
    ClusterFacts,
    VolumeFact,
    facts_from_objects,
)
from longhorn_bi.engine.versions import LonghornVersion, detect_version
from tests.support import crd_documents

V16, V112 = LonghornVersion(1, 6), LonghornVersion(1, 12)


def obj(kind: str, name: str, **fields: object) -> dict[str, object]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": kind,
        "metadata": {"name": name, "namespace": "longhorn-system"},
        **fields,
    }


def test_nothing_seen_means_nothing_known_offline() -> None:
    facts = facts_from_objects([obj("BackingImage", "parrot")], V112)
    assert facts.backup_targets is None and facts.backups is None
    assert facts.backing_images == (BackingImageFact("parrot"),)


def test_a_cluster_listing_is_complete_even_when_empty() -> None:
    facts = facts_from_objects([], V112, complete=True)
    assert facts.backup_targets == () and facts.backing_images == () and facts.complete


def test_the_setting_is_the_target_on_1_6_and_ignored_on_1_12() -> None:
    setting = obj("Setting", "backup-target", value="nfs://nfs:/export")
    mirrored = obj("BackupTarget", "default", spec={"backupTargetURL": ""})
    on_16 = facts_from_objects([mirrored, setting], V16).target("default")
    assert on_16 is not None and on_16.url == "nfs://nfs:/export"
    on_112 = facts_from_objects([mirrored, setting], V112).target("default")
    assert on_112 is not None and on_112.url == ""


def test_the_mirrored_target_keeps_its_credential_secret_on_1_6() -> None:
    # 1.6/1.7 mirror the backup-target Setting into BackupTarget "default" (with the
    # credential secret the restore reads); in either order the URL is the Setting's.
    setting = obj("Setting", "backup-target", value="s3://bucket@us-east-1/")
    mirrored = obj(
        "BackupTarget", "default", spec={"backupTargetURL": "", "credentialSecret": "s3-secret"}
    )
    for objects in ([mirrored, setting], [setting, mirrored]):
        target = facts_from_objects(objects, V16).target("default")
        assert target is not None
        assert (target.url, target.credential_secret) == ("s3://bucket@us-east-1/", "s3-secret")


def test_backup_and_image_status_become_facts() -> None:
    image = obj(
        "BackingImage",
        "parrot",
        status={"checksum": "ab", "diskFileStatusMap": {"d1": {"state": "ready"}}},
    )
    backup = obj(
        "BackupBackingImage",
        "parrot-x",
        spec={"backingImage": "parrot", "userCreated": False},
        status={"url": "u", "checksum": "ab", "state": "Completed"},
    )
    facts = facts_from_objects([image, backup], V112)
    assert facts.backing_image("parrot") == BackingImageFact(
        "parrot", "ab", ready=True, has_status_checksum=True
    )
    [fact] = facts.backups or ()
    assert (fact.backing_image, fact.url, fact.state, fact.user_created) == (
        "parrot",
        "u",
        "Completed",
        False,
    )


def test_an_encrypting_clone_is_encrypted_once_made() -> None:
    # Longhorn's data source controller copies the key's secret to spec.secret: a decrypting
    # clone of it, applied in the same files, must find the source encrypted.
    params = {"backing-image": "parrot", "encryption": "encrypt", "secret": "key"}
    clone = obj(
        "BackingImage", "parrot-enc", spec={"sourceType": "clone", "sourceParameters": params}
    )
    plain = obj(
        "BackingImage",
        "parrot-copy",
        spec={"sourceType": "clone", "sourceParameters": {**params, "encryption": "ignore"}},
    )
    facts = facts_from_objects([clone, plain], V112)
    assert [(f.name, f.secret) for f in facts.backing_images or ()] == [
        ("parrot-enc", "key"),
        ("parrot-copy", ""),
    ]


def test_merged_facts_prefer_the_second_source() -> None:
    files = ClusterFacts(backing_images=(BackingImageFact("a", "1"), BackingImageFact("b")))
    cluster = ClusterFacts(
        backing_images=(BackingImageFact("a", "2"),), complete=True, origin="cluster"
    )
    merged = files.merged(cluster)
    assert merged.backing_image("a") == BackingImageFact("a", "2")
    assert merged.backing_image("b") is not None and merged.complete


def test_volumes_from_objects_keep_what_the_export_rule_reads() -> None:
    facts = facts_from_objects(
        [
            obj("Volume", "vol1", spec={"dataEngine": "v2"}, status={"robustness": "healthy"}),
            obj("Volume", "vol2", spec={}),
        ],
        V112,
    )
    assert facts.volume("vol1") == VolumeFact("vol1", "v2", "healthy", "")
    assert facts.volume("vol2") == VolumeFact("vol2", "v1", "", None)
    assert facts.volumes is not None and not facts.is_complete("volumes")


def test_a_collection_the_cluster_did_not_list_stays_unknown() -> None:
    facts = facts_from_objects([], V112, complete=True, unlisted=frozenset({"volumes"}))
    assert facts.volumes is None and not facts.is_complete("volumes")
    assert facts.backing_images == () and facts.is_complete("backing_images")


def test_volumes_only_in_files_are_never_known_absent_after_a_merge() -> None:
    """A cluster that could not list volumes, merged with files that hold one: the merged
    facts know that volume, and know no volume to be absent; other collections stay complete."""
    files = facts_from_objects([obj("Volume", "vol1", spec={})], V112)
    cluster = facts_from_objects(
        [], V112, complete=True, origin="cluster", unlisted=frozenset({"volumes"})
    )
    merged = files.merged(cluster)
    assert merged.volume("vol1") is not None
    assert not merged.is_complete("volumes") and merged.is_complete("backing_images")
    listed = facts_from_objects([], V112, complete=True, origin="cluster")
    assert files.merged(listed).is_complete("volumes")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.6", V16),
        ("v1.12.1", V112),
        ("1.9.2", LonghornVersion(1, 9)),
        ("v1.8.0-rc1", LonghornVersion(1, 8)),
    ],
)
def test_versions_parse(text: str, expected: LonghornVersion) -> None:
    assert LonghornVersion.parse(text) == expected


@pytest.mark.parametrize("text", ["1.5", "2.0", "one", "", "1.13"])
def test_unsupported_versions_are_refused(text: str) -> None:
    with pytest.raises(InvalidInput):
        LonghornVersion.parse(text)


def test_version_lines() -> None:
    assert V16.line == "1.6/1.7" and not V16.has_backup_target_crd and not V16.has_clone_source
    assert (
        LonghornVersion(1, 7).has_clone_source
        and not LonghornVersion(1, 7).backup_has_backing_image_field
    )
    assert (
        V112.line == "1.8+"
        and V112.backup_has_backing_image_field
        and V112.restore_has_backup_target_name
    )


def test_detect_version_from_labels_then_from_the_schema() -> None:
    assert detect_version(crd_documents("1.12")) == V112
    assert detect_version(crd_documents("1.6")) == V16
    unlabelled = crd_documents("1.12")
    for crd in unlabelled:
        crd["metadata"].pop("labels", None)
    assert detect_version(unlabelled).line == "1.8+"
    with pytest.raises(InvalidInput, match="CRDs are not installed"):
        detect_version([])


def test_a_target_fact_parses_its_url_once_and_none_when_bad() -> None:
    good = BackupTargetFact("default", "s3://bucket@us-east-1/path/")
    assert good.store is not None and good.store.host == "bucket"
    assert good.store is good.store  # cached on the fact
    assert BackupTargetFact("empty", "").store is None
    assert BackupTargetFact("bad", "ftp://nowhere/").store is None
