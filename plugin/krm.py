"""`validate --krm` (and `longhorn-bi-krm`): the validator as a KRM function for kustomize and kpt.

Reads a ResourceList on standard input and writes it back with `results`, exiting 1 when one
is an error (or a warning under strict), as the KRM Functions Specification says
(kubernetes-sigs/kustomize, cmd/config/docs/api-conventions/functions-spec.md). The input's
text is written back as it came, so items of any kind, their comments and their quoting pass
through untouched; only `results` is added.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import yaml

from longhorn_bi.engine.documents import (
    SourceDocument,
    decode,
    iter_documents,
    krm_origin,
    list_items,
)
from longhorn_bi.engine.errors import InvalidInput
from longhorn_bi.engine.validation import Report, Result, validate_documents
from longhorn_bi.engine.versions import LonghornVersion

API_VERSIONS = ("config.kubernetes.io/v1", "config.kubernetes.io/v1alpha1")
# functionConfig keys: kustomize and kpt (`-- key=value`) hand them over as a ConfigMap's
# `data`, strings only; a typed config object may carry them under `spec`.
VERSION_KEY = "longhornVersion"
STRICT_KEY = "strict"
NAMESPACE_KEY = "namespace"
KEYS = (VERSION_KEY, STRICT_KEY, NAMESPACE_KEY)
_Dumper: type[Any] = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


@dataclass(frozen=True)
class FunctionOptions:
    version: LonghornVersion
    strict: bool
    namespace: str


def function_options(config: Any, defaults: FunctionOptions) -> FunctionOptions:
    """Options from the functionConfig (its `data`, or `spec`), the command line's otherwise."""
    if not isinstance(config, Mapping):
        return defaults
    section = "data" if "data" in config else "spec"
    values = config.get(section)
    if values is None:
        return defaults
    if not isinstance(values, Mapping):
        raise InvalidInput(f"functionConfig.{section}: a mapping is expected")
    unknown = sorted(str(k) for k in values if k not in KEYS)
    if unknown:
        raise InvalidInput(
            f"functionConfig.{section}.{unknown[0]}: not an option of this function",
            hint=f"the options are {', '.join(KEYS)}",
        )
    options = defaults
    if VERSION_KEY in values:
        try:
            options = replace(options, version=LonghornVersion.parse(str(values[VERSION_KEY])))
        except InvalidInput as exc:
            raise InvalidInput(
                f"functionConfig.{section}.{VERSION_KEY}: {exc.message}", hint=exc.hint
            ) from None
    if STRICT_KEY in values:
        strict = str(values[STRICT_KEY]).strip().lower()
        if strict not in ("true", "false"):
            raise InvalidInput(
                f"functionConfig.{section}.{STRICT_KEY}: {values[STRICT_KEY]!r} is not a boolean",
                hint='write "true" or "false"',
            )
        options = replace(options, strict=strict == "true")
    if NAMESPACE_KEY in values:
        namespace = values[NAMESPACE_KEY]
        if not isinstance(namespace, str) or not namespace:
            raise InvalidInput(f"functionConfig.{section}.{NAMESPACE_KEY}: a name is expected")
        options = replace(options, namespace=namespace)
    return options


def read_resource_list(text: str) -> SourceDocument:
    """The one ResourceList document of `text`, or InvalidInput saying what was sent instead."""
    documents = list(iter_documents(text, "<stdin>"))
    hint = "--krm reads what kustomize or kpt send a function; to check files, leave --krm out"
    if len(documents) != 1:
        raise InvalidInput(
            f"standard input holds {len(documents)} documents, not one ResourceList", hint=hint
        )
    [document] = documents
    obj = document.obj
    if not isinstance(obj, Mapping) or obj.get("kind") != "ResourceList":
        raise InvalidInput("standard input is not a ResourceList", hint=hint)
    if obj.get("apiVersion") not in API_VERSIONS:
        raise InvalidInput(
            f"apiVersion: {obj.get('apiVersion')!r} is not a ResourceList version this reads",
            hint=f"send {API_VERSIONS[0]}",
        )
    if not isinstance(obj.get("items", []), list):
        raise InvalidInput("items: a list of objects is expected", hint=hint)
    return document


def krm_result(result: Result, item: Any) -> dict[str, Any]:
    """One entry of `results`, in the shape the specification gives."""
    entry: dict[str, Any] = {
        "message": f"[{result.rule}] {result.message}",
        "severity": str(result.severity),
    }
    if isinstance(item, Mapping):
        metadata = item.get("metadata")
        metadata = metadata if isinstance(metadata, Mapping) else {}
        ref = {
            "apiVersion": item.get("apiVersion"),
            "kind": item.get("kind"),
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
        }
        entry["resourceRef"] = {k: v for k, v in ref.items() if isinstance(v, str)}
    if result.path:
        entry["field"] = {"path": result.path}
    origin = krm_origin(item)
    if origin is not None:
        path, index = origin
        entry["file"] = {"path": path} if index is None else {"path": path, "index": index}
    entry["tags"] = {"rule": result.rule}
    return entry


@dataclass(frozen=True)
class FunctionRun:
    output: str  # the ResourceList to write back
    failed: bool
    # The results as text lines for standard error: kustomize shows a failing function's
    # standard error, not its results.
    log: list[str]


def log_line(result: Mapping[str, Any]) -> str:
    ref = result.get("resourceRef", {})
    where = f"{ref.get('kind', '?')}/{ref.get('name', '?')}"
    if "file" in result:
        where = f"{result['file']['path']}: {where}"
    field = result.get("field", {}).get("path")
    return f"{where}: {result['severity']}: {field + ': ' if field else ''}{result['message']}"


def run_function(data: bytes, defaults: FunctionOptions) -> FunctionRun:
    """Validate the items of the ResourceList in `data`."""
    text = decode(data, "<stdin>")
    document = read_resource_list(text)
    options = function_options(document.obj.get("functionConfig"), defaults)
    items: list[Any] = document.obj.get("items") or []
    # Each item is named by its index, so that a result finds its item again.
    checked = [
        replace(item, source=str(number))
        for number, item in enumerate(list_items(document) if items else [])
    ]
    report = validate_documents(
        checked, version=options.version, namespace=options.namespace, report=Report()
    )
    report.results.sort(key=lambda r: (int(r.file), r.line, r.column, r.rule))
    results = [krm_result(r, items[int(r.file)]) for r in report.results]
    failed = report.errors > 0 or (options.strict and report.warnings > 0)
    output = with_results(text, document.obj, results)
    return FunctionRun(output, failed, [log_line(r) for r in results])


def with_results(text: str, resource_list: Mapping[str, Any], results: list[Any]) -> str:
    """`text` with `results` set. A block-style input keeps its bytes and gains the key at
    the end; JSON or one that already has results is written anew."""
    end = text.rstrip()
    block = not end.lstrip().startswith("{") and not end.endswith(("...", "---"))
    if block and "results" not in resource_list:
        added = yaml.dump({"results": results}, Dumper=_Dumper, sort_keys=False, allow_unicode=True)
        # Nothing of the input is stripped: a `|+` scalar at its end keeps its newlines.
        return text + ("" if text.endswith("\n") else "\n") + added
    rewritten = {**resource_list, "results": results}
    return yaml.dump(rewritten, Dumper=_Dumper, sort_keys=False, allow_unicode=True)


def main() -> None:
    """`longhorn-bi-krm`: for kustomize's `exec` functions, which run a path without arguments."""
    from longhorn_bi.plugin.cli import main as cli_main

    cli_main(["validate", "--krm", *sys.argv[1:]])
