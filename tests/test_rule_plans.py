"""The shortcuts `evaluate` takes give the same violations as running every rule of a kind."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from longhorn_bi.engine.facts import BackingImageFact, BackupFact, BackupTargetFact, ClusterFacts
from longhorn_bi.engine.names import (
    is_valid_name,
    label_key_problem,
    label_value_problem,
    name_problem,
    plainly_valid_label,
)
from longhorn_bi.engine.rules import RULES, RuleContext, Violation, evaluate
from longhorn_bi.engine.rules.base import Manifest
from longhorn_bi.engine.rules.schema import SOURCE_PARAMETERS
from longhorn_bi.engine.versions import LonghornVersion

TARGET = "s3://backupbucket@us-east-1/longhorn/"
FACTS = ClusterFacts(
    backup_targets=(BackupTargetFact("default", TARGET, True),),
    backing_images=(BackingImageFact("parrot", "a" * 128, True),),
    backups=(
        BackupFact("parrot", "parrot", "default", f"{TARGET}?backingImage=parrot", "b" * 128),
    ),
    complete=True,
    origin="cluster",
)
# Every parameter any source type knows, several of them wrong, so that a rule that did
# look at an object of a source type it is not meant for would have something to say.
EVERY_PARAMETER = {
    "url": "http://localhost/x",
    "backup-url": "ftp://nowhere",
    "concurrent-limit": "0",
    "backup-target-name": "Bad_Name",
    "volume-name": "",
    "export-type": "zip",
    "backing-image": "Bad Name",
    "encryption": "rot13",
    "typo_key": "x",
}


def _image(source: Any, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "BackingImage",
        "metadata": {
            "name": "parrot-copy",
            "namespace": "longhorn-system",
            "labels": {"app.kubernetes.io/part-of": "images", "bad key!": "x", "team": 5},
        },
        "spec": {
            "sourceType": source,
            "sourceParameters": dict(EVERY_PARAMETER),
            "checksum": "c" * 128,
            **spec,
        },
    }


SOURCES = (*SOURCE_PARAMETERS, "clone", "no-such-type", None, 7)
VERSIONS = (LonghornVersion(1, 6), LonghornVersion(1, 8), LonghornVersion(1, 12))


def _every_rule(obj: dict[str, Any], ctx: RuleContext) -> list[Violation]:
    """The reference: every rule of the object's kind, run through Rule.run."""
    manifest = Manifest(obj)
    found = [v for r in RULES if manifest.kind in r.kinds for v in r.run(manifest, ctx)]
    order = {"error": 0, "warning": 1}
    return sorted(found, key=lambda v: (order[v.severity], v.path_str, v.rule))


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("version", VERSIONS, ids=str)
def test_rules_skipped_for_a_source_type_have_nothing_to_say(source: Any, version: Any) -> None:
    obj = _image(source)
    for ctx in (RuleContext(version=version), RuleContext(version=version, facts=FACTS)):
        for r in RULES:
            if r.source_types is not None and source not in r.source_types:
                assert list(r.check(Manifest(obj), ctx)) == [], (r.id, source)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("version", VERSIONS, ids=str)
def test_evaluate_equals_running_every_rule(source: Any, version: Any) -> None:
    for ctx in (RuleContext(version=version), RuleContext(version=version, facts=FACTS)):
        for obj in (
            _image(source),
            _image(source, sourceParameters={"backup-url": f"{TARGET}?backingImage=parrot"}),
            _image(source, sourceParameters={"url": "https://example.com/i.raw"}),
        ):
            found = evaluate(copy.deepcopy(obj), ctx)
            assert found == _every_rule(obj, ctx)
            assert found, "each object breaks some rule, so the comparison means something"


def test_the_field_type_rule_still_sees_wrong_values_in_maps_of_strings() -> None:
    obj = _image("download")
    obj["metadata"]["annotations"] = {"note": "fine", "count": 3}
    obj["spec"]["sourceParameters"] = {"url": "https://example.com/i.raw", "file-type": True}
    paths = {v.path_str for v in evaluate(obj) if v.rule == "LHB005"}
    assert paths == {
        "metadata.labels.team",
        "metadata.annotations.count",
        "spec.sourceParameters.file-type",
    }


LABEL_KEYS = [
    "team",
    "app.kubernetes.io/part-of",
    "example.com/x",
    "a" * 63,
    "a" * 64,
    "team\n",
    "example.com\n/x",
    "Example.com/x",
    "/x",
    "example.com/",
    "a/b/c",
    "-team",
    "team-",
    "x" * 250 + "/name",
    "x" * 253 + "/n",
    "x" * 254 + "/n",
    "ex..ample/x",
    "ex.-ample/x",
    "é",
    "²",
    "Team9",
]
LABEL_VALUES: list[object] = [
    "",
    "images",
    "Storage2",
    "v1.2_3",
    "a" * 63,
    "a" * 64,
    "x\n",
    "-x",
    "x-",
    "ü",
    "²",
    5,
    None,
]


def test_the_plain_label_shortcut_never_passes_a_label_the_full_checks_reject() -> None:
    passed = 0
    for key in LABEL_KEYS:
        for value in LABEL_VALUES:
            if plainly_valid_label(key, value):
                passed += 1
                assert label_key_problem(key) is None, key
                assert not isinstance(value, str) or label_value_problem(value) is None, value
            elif label_key_problem(key) is None and (
                not isinstance(value, str) or label_value_problem(value) is None
            ):
                # Valid but left to the full checks: long prefixes, and the newline that
                # their `$` lets through at the end of a part.
                newline = "\n" in key or (isinstance(value, str) and "\n" in value)
                assert len(key) > 254 or newline, (key, value)
    assert passed > 20


@pytest.mark.parametrize("metadata", [None, [], "parrot", 7])
@pytest.mark.parametrize("spec", [None, [], "download"])
def test_the_manifest_reads_wrong_shapes_as_absent(metadata: Any, spec: Any) -> None:
    obj = {"apiVersion": "longhorn.io/v1beta2", "kind": "BackingImage", "metadata": metadata}
    obj["spec"] = spec
    manifest = Manifest(obj)
    assert (manifest.metadata, manifest.spec) == ({}, {})
    assert (manifest.name, manifest.namespace, manifest.source_type) == ("", None, None)
    assert manifest.source_parameters == {} and manifest.raw_source_parameters == {}
    rules = {v.rule for v in evaluate(obj)}
    # Reported once, by the field-type rule, when present but of the wrong type; the rules
    # that read a missing field say it is missing.
    assert ("LHB005" in rules) == (metadata is not None or spec is not None)
    assert {"LHB003", "LHB101"} <= rules


def test_the_manifest_keeps_raw_parameters_and_strips_string_ones() -> None:
    obj = _image("restore", sourceParameters={"backup-url": "  x  ", "concurrent-limit": 2, 3: "y"})
    manifest = Manifest(obj)
    assert manifest.source_parameters == {"backup-url": "x"}
    assert manifest.raw_source_parameters is obj["spec"]["sourceParameters"]


def test_the_label_key_memo_gives_the_full_checks_answer() -> None:
    keys = ["app.kubernetes.io/part-of", "Example.com/x", "a" * 64, "-x", "x/", "a/b/c", "ok"]
    for _ in range(2):  # the second round answers from the memo
        for key in keys:
            assert plainly_valid_label(key, "v") == (label_key_problem(key) is None), key


NAMES = ["parrot", "p", "", "pa", "a" * 253, "a" * 254, "Parrot", "parrot\n", "-x", "x-", "a_b.c"]


@pytest.mark.parametrize("name", NAMES)
def test_the_name_fast_path_accepts_exactly_what_name_problem_accepts(name: str) -> None:
    assert bool(is_valid_name(name)) == (name_problem(name) is None)
