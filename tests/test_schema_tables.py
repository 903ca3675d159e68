"""The engine's slice of the CRD schemas agrees with Longhorn's CRDs of every version line."""

from __future__ import annotations

import pytest

from longhorn_bi.engine.rules.common import V1BETA1_KINDS
from longhorn_bi.engine.rules.schema import FIELD_TYPES, known_spec_fields, source_types
from longhorn_bi.engine.versions import SUPPORTED_VERSIONS, LonghornVersion
from tests.support import crd_documents, crd_schema

LINES = [(line, LonghornVersion.parse(line)) for line in SUPPORTED_VERSIONS]

TYPES = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "object": "map",
    "array": "list",
}


@pytest.mark.parametrize(("line", "version"), LINES)
@pytest.mark.parametrize("kind", ["BackingImage", "BackupBackingImage"])
def test_known_spec_fields_match_the_crd(line: str, version: LonghornVersion, kind: str) -> None:
    spec = crd_schema(kind, line)["properties"]["spec"]["properties"]
    assert known_spec_fields(kind, version) == frozenset(spec)


@pytest.mark.parametrize("line", SUPPORTED_VERSIONS)
@pytest.mark.parametrize("kind", ["BackingImage", "BackupBackingImage", "BackupTarget"])
def test_field_types_match_the_crd(line: str, kind: str) -> None:
    schema = crd_schema(kind, line)
    for path, expected in FIELD_TYPES[kind].items():
        node = schema
        for part in path:
            if part == "*":
                node = node.get("additionalProperties") or node.get("items") or {}
            else:
                node = node.get("properties", {}).get(part, {})
        if node:  # a field of the other line
            assert TYPES[node["type"]] == expected, f"{kind} {'.'.join(path)}"


@pytest.mark.parametrize(("line", "version"), LINES)
def test_source_types_match_the_crd(line: str, version: LonghornVersion) -> None:
    enum = crd_schema("BackingImage", line)["properties"]["spec"]["properties"]["sourceType"][
        "enum"
    ]
    assert set(source_types(version)) == set(enum)


def test_the_setting_value_is_a_string() -> None:
    assert crd_schema("Setting", "1.12")["properties"]["value"]["type"] == "string"


@pytest.mark.parametrize(("line", "version"), LINES)
def test_v1beta1_is_served_where_the_rules_say(line: str, version: LonghornVersion) -> None:
    # LHB001 warns, rather than refuses, v1beta1 of the kinds whose CRD serves it.
    for crd in crd_documents(line):
        kind = crd["spec"]["names"]["kind"]
        served = {v["name"] for v in crd["spec"]["versions"] if v["served"]}
        expected = version.serves_v1beta1 and kind in V1BETA1_KINDS
        assert ("v1beta1" in served) == expected, f"{kind} in {line}"


@pytest.mark.parametrize(("line", "version"), LINES)
def test_required_fields_and_enums_match_the_rules(line: str, version: LonghornVersion) -> None:
    # LHB301/LHB302 (required fields) and LHB108 (the dataEngine enum) read these.
    backup = crd_schema("BackupBackingImage", line)["properties"]["spec"]
    required = {"userCreated"} | (
        {"backingImage"} if version.backup_has_backing_image_field else set()
    )
    assert set(backup.get("required", [])) == required
    engine = crd_schema("BackingImage", line)["properties"]["spec"]["properties"].get("dataEngine")
    assert (engine is not None) == version.has_data_engine
    if engine is not None:
        assert engine["enum"] == ["v1", "v2"]
