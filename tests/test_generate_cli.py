"""`backup` and `restore`: manifests that conform to Longhorn's CRDs, or a refusal."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.support import assert_conforms_to_crd, run_cli

CHECKSUM = "304f3ed30ca6878e9056ee6f1b02b328239f0d0c2c1272840998212f9734b196371560b3b939037e4f4c2884ce457c2cbc9f0621f4f5d1ca983983c8cdf8cd9a"
URL = "s3://backupbucket@us-east-1/?backingImage=parrot"
LINES = {"1.6": "1.6", "1.7": "1.6", "1.8": "1.12", "1.12": "1.12"}


def generated(*args: str) -> dict[str, Any]:
    result = run_cli(*args)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = yaml.safe_load(result.stdout)
    return document


@pytest.mark.parametrize("version", sorted(LINES))
def test_backup_manifests_conform_to_the_crd(version: str) -> None:
    manifest = generated(
        "backup",
        "parrot",
        "--label",
        "usecase=test",
        "--label",
        "type=raw",
        "--longhorn-version",
        version,
    )
    assert_conforms_to_crd(manifest, LINES[version])
    assert manifest["spec"]["userCreated"] is True
    assert manifest["spec"]["labels"] == {"usecase": "test", "type": "raw"}
    assert manifest["metadata"] == {"name": "parrot", "namespace": "longhorn-system"}
    if LINES[version] == "1.12":
        assert manifest["spec"]["backingImage"] == "parrot"
        assert manifest["spec"]["backupTargetName"] == "default"
    else:
        assert "backingImage" not in manifest["spec"]


@pytest.mark.parametrize("version", sorted(LINES))
def test_restore_manifests_conform_to_the_crd(version: str) -> None:
    args = [
        "restore",
        "parrot-restore",
        "--backup-url",
        URL,
        "--concurrent-limit",
        "2",
        "--checksum",
        CHECKSUM,
    ]
    if LINES[version] == "1.12":
        args += ["--backup-target-name", "default"]
    manifest = generated(*args, "--longhorn-version", version)
    assert_conforms_to_crd(manifest, LINES[version])
    assert manifest["spec"]["sourceParameters"]["concurrent-limit"] == "2"
    assert manifest["spec"]["checksum"] == CHECKSUM


def test_backup_on_1_12_names_image_and_target() -> None:
    manifest = generated(
        "backup",
        "parrot-weekly",
        "--backing-image",
        "parrot",
        "--backup-target",
        "offsite",
        "-n",
        "storage",
    )
    assert manifest["spec"]["backingImage"] == "parrot"
    assert manifest["spec"]["backupTargetName"] == "offsite"
    assert manifest["metadata"]["namespace"] == "storage"


def test_a_backup_named_otherwise_is_fine_from_1_8() -> None:
    # Longhorn itself names backups <image>-<random> from 1.8.
    result = run_cli("backup", "parrot-weekly", "--backing-image", "parrot")
    assert result.returncode == 0
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("args", "rule", "fix"),
    [
        (
            ["backup", "parrot", "--backing-image", "ubuntu", "--longhorn-version", "1.6"],
            "LHB303",
            "name the backup 'ubuntu'",
        ),
        (
            ["backup", "parrot", "--backup-target", "offsite", "--longhorn-version", "1.7"],
            "LHB304",
            "needs Longhorn 1.8",
        ),
        (
            [
                "restore",
                "r1",
                "--backup-url",
                URL,
                "--backup-target-name",
                "default",
                "--longhorn-version",
                "1.6",
            ],
            "LHB203",
            "1.8 or later",
        ),
    ],
)
def test_what_longhorn_ignores_is_printed_with_a_warning(
    args: list[str], rule: str, fix: str
) -> None:
    # Before 1.8 Longhorn prunes or ignores these fields: the manifest is accepted.
    result = run_cli(*args)
    assert result.returncode == 0
    assert result.stdout.startswith("apiVersion:")
    assert f"warning: [{rule}]" in result.stderr and fix in result.stderr


def test_json_output() -> None:
    result = run_cli("restore", "parrot-restore", "--backup-url", URL, "-o", "json")
    assert json.loads(result.stdout)["spec"]["sourceParameters"] == {"backup-url": URL}


@pytest.mark.parametrize(
    ("args", "rule", "fix"),
    [
        (["backup", "Parrot"], "LHB003", "lower-case"),
        (["backup", "parrot", "--label", "usecase="], "LHB004", "empty value"),
        (["backup", "parrot", "--label", "bad key=x"], "LHB004", "label key"),
        (
            ["restore", "r1", "--backup-url", "s3://backupbucket@us-east-1/"],
            "LHB201",
            "backingImage=",
        ),
        (
            ["restore", "r1", "--backup-url", URL, "--concurrent-limit", "0"],
            "LHB202",
            '"1" or more',
        ),
        (
            ["restore", "r1", "--backup-url", URL, "--checksum", CHECKSUM.upper()],
            "LHB103",
            "lower case",
        ),
    ],
)
def test_invalid_requests_are_refused_with_the_rules_message(
    args: list[str], rule: str, fix: str
) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert f"error: [{rule}]" in result.stderr and fix in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_label_flag_is_a_usage_error() -> None:
    result = run_cli("backup", "parrot", "--label", "novalue")
    assert result.returncode == 2
    assert "KEY=VALUE" in result.stderr


def test_the_conformance_check_itself_catches_pruned_and_mistyped_fields() -> None:
    import jsonschema

    newer = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackupBackingImage",
        "metadata": {"name": "p"},
        "spec": {"userCreated": True, "backingImage": "p"},
    }
    assert_conforms_to_crd(newer, "1.12")
    with pytest.raises(AssertionError, match=r"\.spec\.backingImage"):
        assert_conforms_to_crd(newer, "1.6")
    with pytest.raises(jsonschema.ValidationError):
        assert_conforms_to_crd(
            {**newer, "spec": {"userCreated": "true", "backingImage": "p"}}, "1.12"
        )
