"""The engine's slice of the CRD schemas agrees with Longhorn's CRDs of both lines."""

from __future__ import annotations

import pytest

from longhorn_bi.engine.rules.schema import FIELD_TYPES, known_spec_fields, source_types
from longhorn_bi.engine.versions import LonghornVersion
from tests.support import crd_schema

TYPES = {
    "string": "string",
    "boolean": "boolean",
    "integer": "integer",
    "object": "map",
    "array": "list",
}


@pytest.mark.parametrize(
    ("line", "version"), [("1.6", LonghornVersion(1, 6)), ("1.12", LonghornVersion(1, 12))]
)
@pytest.mark.parametrize("kind", ["BackingImage", "BackupBackingImage"])
def test_known_spec_fields_match_the_crd(line: str, version: LonghornVersion, kind: str) -> None:
    spec = crd_schema(kind, line)["properties"]["spec"]["properties"]
    assert known_spec_fields(kind, version) == frozenset(spec)


@pytest.mark.parametrize("line", ["1.6", "1.12"])
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


@pytest.mark.parametrize(
    ("line", "version"), [("1.6", LonghornVersion(1, 6)), ("1.12", LonghornVersion(1, 12))]
)
def test_source_types_match_the_crd(line: str, version: LonghornVersion) -> None:
    enum = crd_schema("BackingImage", line)["properties"]["spec"]["properties"]["sourceType"][
        "enum"
    ]
    assert set(source_types(version)) == set(enum)


def test_the_setting_value_is_a_string() -> None:
    assert crd_schema("Setting", "1.12")["properties"]["value"]["type"] == "string"
