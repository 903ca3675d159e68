"""YAML documents with field positions, and every way a file can be bad."""

from __future__ import annotations

import pytest

from longhorn_bi.engine.documents import decode, expand_lists, iter_documents
from longhorn_bi.engine.errors import ManifestError

TWO_DOCS = """\
apiVersion: longhorn.io/v1beta2
kind: BackingImage
metadata:
  name: parrot
spec:
  sourceParameters:
    concurrent-limit: "0"
---
# only a comment
---
kind: Other
"""


def test_documents_remember_where_each_field_is() -> None:
    first, second = list(iter_documents(TWO_DOCS, "f.yaml"))
    assert first.obj["spec"]["sourceParameters"]["concurrent-limit"] == "0"
    assert first.position_of(("spec", "sourceParameters", "concurrent-limit")) == (7, 5)
    # A missing field points at the nearest field that exists.
    assert first.position_of(("spec", "checksum")) == (5, 1)
    assert second.obj == {"kind": "Other"}
    assert second.line == 11


def test_scalars_follow_kubernetes_yaml() -> None:
    [doc] = iter_documents("a: 2\nb: '2'\nc: true\nd: 2024-01-01T00:00:00Z\ne: null\n", "f")
    assert doc.obj == {"a": 2, "b": "2", "c": True, "d": "2024-01-01T00:00:00Z", "e": None}


def test_duplicate_keys_are_refused_with_their_line() -> None:
    with pytest.raises(ManifestError, match="duplicate key 'name'") as caught:
        list(iter_documents("metadata:\n  name: a\n  name: b\n", "f"))
    assert (caught.value.line, caught.value.column) == (3, 3)


def test_syntax_errors_carry_the_line() -> None:
    with pytest.raises(ManifestError, match="YAML syntax error") as caught:
        list(iter_documents("a: 1\nb: [1, 2\nc: 3\n", "f"))
    assert caught.value.line >= 2


def test_an_alias_bomb_fails_fast() -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for level in "bcdefghij":
        bomb += f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = level
    with pytest.raises(ManifestError, match="alias"):
        list(iter_documents(bomb, "f"))


def test_a_recursive_alias_is_refused() -> None:
    with pytest.raises(ManifestError, match="nests deeper"):
        list(iter_documents("a: &a [*a]\n", "f"))


def test_merge_keys_are_refused() -> None:
    with pytest.raises(ManifestError, match="merge keys"):
        list(iter_documents("base: &b {x: 1}\nobj:\n  <<: *b\n", "f"))


def test_non_utf8_is_refused_with_its_offset() -> None:
    with pytest.raises(ManifestError, match="not UTF-8 text: byte 0xff at offset 6") as caught:
        decode(b"a: 1\nb\xff: 2\n", "f")
    assert caught.value.line == 2


def test_a_byte_order_mark_is_accepted() -> None:
    assert decode("\ufeffa: 1\n".encode(), "f") == "a: 1\n"


def test_a_list_stands_for_its_items() -> None:
    text = "apiVersion: v1\nkind: List\nitems:\n- kind: A\n  metadata:\n    name: x\n- kind: B\n"
    [doc] = iter_documents(text, "f")
    first, second = list(expand_lists(doc))
    assert first.obj["kind"] == "A"
    assert first.position_of(("metadata", "name")) == (6, 5)
    assert second.obj == {"kind": "B"}


def test_json_documents_parse() -> None:
    [doc] = iter_documents('{"kind": "BackingImage", "metadata": {"name": "parrot"}}', "f.json")
    assert doc.obj["metadata"]["name"] == "parrot"
