"""Multi-document YAML (and JSON) parsed into plain objects that remember where each field is.

Rules report a field path; the validator turns it into file:line:column with
`SourceDocument.position_of`. Parsing refuses duplicate keys and bounds alias expansion
(a "billion laughs" document fails fast instead of eating the machine).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from longhorn_bi.engine.errors import ManifestError

# Expanded nodes one document may have once aliases are followed, and how deep it may nest.
# A document without aliases has fewer nodes than its stream has characters, so the budget
# grows to the stream's length: a large ResourceList (one document) is read, a bomb is not.
MAX_NODES = 200_000
MAX_DEPTH = 64

Position = tuple[int, int]  # 1-based line and column
FieldPath = tuple[str | int, ...]

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SCALAR_TAGS = {
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


@dataclass(frozen=True)
class SourceDocument:
    """One YAML document: its object and the position of every field in the source."""

    source: str
    index: int
    obj: Any
    positions: Mapping[FieldPath, Position] = field(repr=False)
    # Lines and columns to take off `positions` (see with_krm_origin).
    shift: Position = (0, 0)

    @property
    def line(self) -> int:
        return self.position_of(())[0]

    def position_of(self, path: FieldPath) -> Position:
        """Where `path` is, or the nearest enclosing field that exists."""
        for end in range(len(path), -1, -1):
            position = self.positions.get(path[:end])
            if position is not None:
                return (position[0] - self.shift[0], max(position[1] - self.shift[1], 1))
        return (1, 1)


class _Converter:
    """Node graph -> Python objects, recording positions and counting expanded nodes."""

    def __init__(self, source: str, budget: int) -> None:
        self.source = source
        self.positions: dict[FieldPath, Position] = {}
        self.budget = self.limit = budget
        self.constructor = yaml.constructor.SafeConstructor()

    def error(self, node: yaml.Node, message: str, hint: str | None = None) -> ManifestError:
        mark = node.start_mark
        return ManifestError(
            message, source=self.source, line=mark.line + 1, column=mark.column + 1, hint=hint
        )

    def convert(self, node: yaml.Node, path: FieldPath, depth: int) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise self.error(
                node,
                f"the document expands to more than {self.limit} nodes through YAML aliases",
                "an alias bomb? write the values out instead of using anchors",
            )
        if depth > MAX_DEPTH:
            raise self.error(
                node, f"the document nests deeper than {MAX_DEPTH} levels (a recursive alias?)"
            )
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, path, depth)
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, child in enumerate(node.value):
                child_path = (*path, index)
                self.positions.setdefault(child_path, _position(child))
                items.append(self.convert(child, child_path, depth + 1))
            return items
        if node.tag in _SCALAR_TAGS:
            return self.constructor.construct_object(node)
        # Strings, and timestamps kept as text the way Kubernetes' YAML reader keeps them.
        return node.value

    def mapping(self, node: yaml.MappingNode, path: FieldPath, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise self.error(
                    key_node,
                    "YAML merge keys ('<<') are not supported by Kubernetes; write the fields out",
                )
            key = self.convert(key_node, path, depth + 1)
            if isinstance(key, list | dict):
                raise self.error(key_node, "a mapping key must be a plain value")
            if key in result:
                raise self.error(
                    key_node,
                    f"duplicate key {key!r}",
                    "Kubernetes keeps only the last one; remove the other",
                )
            child_path = (*path, key)
            self.positions.setdefault(child_path, _position(key_node))
            result[key] = self.convert(value_node, child_path, depth + 1)
        return result


def _position(node: yaml.Node) -> Position:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def decode(data: bytes, source: str) -> str:
    """UTF-8 (with or without BOM) text, or a ManifestError saying where it is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ManifestError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}",
            source=source,
            line=line,
            column=1,
            hint="save the file as UTF-8",
        ) from None


def iter_documents(text: str, source: str) -> Iterator[SourceDocument]:
    """Each non-empty document of a YAML stream; raises ManifestError at the first bad one."""
    loader = _Loader(text)
    # No cyclic garbage collection while a document is read: all its nodes are alive and each
    # collection would walk them again (a 20,000-item ResourceList took 11 s instead of 2.3).
    collecting = gc.isenabled()
    try:
        index = 0
        while True:
            gc.disable()
            try:
                if not loader.check_node():
                    break
                node = loader.get_node()
                converter = _Converter(source, max(MAX_NODES, len(text)))
                converter.positions[()] = _position(node)
                obj = converter.convert(node, (), 0)
            finally:
                if collecting:
                    gc.enable()
            if obj is not None:
                yield SourceDocument(source, index, obj, converter.positions)
            index += 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        raise ManifestError(
            f"YAML syntax error: {problem}{' ' + exc.context if exc.context and exc.problem else ''}",
            source=source,
            line=(mark.line + 1) if mark else 0,
            column=(mark.column + 1) if mark else 0,
        ) from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"YAML error: {exc}", source=source) from None
    except RecursionError:
        raise ManifestError("the document nests too deeply to read", source=source) from None
    finally:
        loader.dispose()


def expand_lists(document: SourceDocument) -> Iterator[SourceDocument]:
    """A list object stands for its items: `kind: List` (what `kubectl get -o yaml` prints),
    typed lists such as `BackingImageList` (the API's answer) and a KRM `ResourceList`."""
    obj = document.obj
    kind = obj.get("kind") if isinstance(obj, Mapping) else None
    if isinstance(kind, str) and kind.endswith("List") and isinstance(obj.get("items"), list):
        for item in list_items(document):
            yield from expand_lists(item)
    else:
        yield document


def list_items(document: SourceDocument, source: str | None = None) -> list[SourceDocument]:
    """Each entry of `document.obj["items"]` as a document of its own, positions kept.

    One pass over the positions: a list of n items costs O(size), not O(n * size).
    """
    items = document.obj["items"]
    positions: list[dict[FieldPath, Position]] = [{} for _ in items]
    for path, position in document.positions.items():
        if len(path) > 1 and path[0] == "items" and type(path[1]) is int:
            positions[path[1]][path[2:]] = position
    return [
        SourceDocument(source or document.source, document.index, item, where)
        for item, where in zip(items, positions, strict=True)
    ]


# Where kustomize and kpt record the file an object came from (KRM Functions Specification):
# the internal.* annotations are current, the plain ones what older releases wrote.
PATH_ANNOTATIONS = ("internal.config.kubernetes.io/path", "config.kubernetes.io/path")
INDEX_ANNOTATIONS = ("internal.config.kubernetes.io/index", "config.kubernetes.io/index")


def krm_origin(obj: Any) -> tuple[str, int | None] | None:
    """(file, index in that file) from an object's KRM path annotations, if it has them."""
    # dict, not Mapping: this runs for every document and the parser makes dicts.
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    if not isinstance(annotations, dict):
        return None
    path = next((p for k in PATH_ANNOTATIONS if isinstance(p := annotations.get(k), str)), None)
    if not path:
        return None
    index = next((i for k in INDEX_ANNOTATIONS if isinstance(i := annotations.get(k), str)), "")
    return path, int(index) if index.isdigit() else None


def with_krm_origin(document: SourceDocument) -> SourceDocument:
    """`document` named after the file its KRM path annotation gives, when it has one.

    kustomize and kpt re-serialise each object, so lines and columns are counted from the
    object's start: the stream's would point nowhere in that file.
    """
    origin = krm_origin(document.obj)
    if origin is None:
        return document
    path, index = origin
    top, left = document.position_of(())
    return replace(
        document,
        source=path,
        index=document.index if index is None else index,
        shift=(top - 1, left - 1),
    )
