"""YAML documents with field positions, and every way a file can be bad."""

from __future__ import annotations

import pytest

from longhorn_bi.engine.documents import (
    decode,
    expand_lists,
    iter_documents,
    krm_origin,
    with_krm_origin,
)
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


def test_typed_lists_and_resource_lists_stand_for_their_items() -> None:
    text = (
        "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n"
        "- kind: BackingImageList\n  items:\n  - kind: BackingImage\n    metadata:\n"
        "      name: a\n  - kind: BackingImage\n    metadata:\n      name: b\n"
        "- kind: ConfigMap\n  metadata:\n    name: c\n"
    )
    [doc] = iter_documents(text, "f")
    items = list(expand_lists(doc))
    assert [d.obj["metadata"]["name"] for d in items] == ["a", "b", "c"]
    # Positions stay those of the stream: b's name is on line 11.
    assert items[1].position_of(("metadata", "name")) == (11, 7)
    assert items[2].line == 12


def test_comment_only_documents_and_a_trailing_separator_are_not_documents() -> None:
    text = "---\n# Source: chart/templates/a.yaml\n---\nkind: A\n---\n# only\n---\n"
    assert [d.obj for d in iter_documents(text, "f")] == [{"kind": "A"}]


def test_krm_path_annotations_give_the_file_and_index() -> None:
    current = {
        "metadata": {
            "annotations": {
                "internal.config.kubernetes.io/path": "apps/restore.yaml",
                "internal.config.kubernetes.io/index": "2",
                "config.kubernetes.io/path": "old.yaml",
            }
        }
    }
    legacy = {"metadata": {"annotations": {"config.kubernetes.io/path": "old.yaml"}}}
    assert krm_origin(current) == ("apps/restore.yaml", 2)
    assert krm_origin(legacy) == ("old.yaml", None)
    assert krm_origin({"metadata": {"name": "x"}}) is None
    assert krm_origin({"metadata": {"annotations": {"config.kubernetes.io/path": 3}}}) is None


def test_an_annotated_document_is_named_after_its_file_with_lines_from_its_start() -> None:
    text = (
        "kind: Other\n---\nkind: BackingImage\nmetadata:\n  annotations:\n"
        "    config.kubernetes.io/path: images/parrot.yaml\n"
        "    config.kubernetes.io/index: '1'\nspec:\n  checksum: X\n"
    )
    first, second = (with_krm_origin(d) for d in iter_documents(text, "<stdin>"))
    assert (first.source, first.line) == ("<stdin>", 1)
    assert (second.source, second.index) == ("images/parrot.yaml", 1)
    assert second.position_of(("spec", "checksum")) == (7, 3)


def test_a_large_resource_list_is_one_document_but_no_alias_bomb() -> None:
    # 20,000 items make one document of about 260,000 nodes, more than MAX_NODES.
    item = "- apiVersion: v1\n  kind: ConfigMap\n  metadata:\n    name: c{n}\n  data:\n    a: b\n"
    text = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n" + "".join(
        item.format(n=n) for n in range(20_000)
    )
    [doc] = iter_documents(text, "f")
    assert len(doc.obj["items"]) == 20_000
