"""Paths and data the tests share: ../shared (beside the repository) and the seed manifests."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
PLUGIN = VENV_BIN / "kubectl-longhorn_bi"
SEED_NAME = "000_59a6917ac71459f7.txt"


def shared_dir() -> Path:
    """The shared/ folder: $LONGHORN_BI_SHARED, or ../shared beside the repository."""
    override = os.environ.get("LONGHORN_BI_SHARED")
    if override:
        return Path(override).resolve()
    for candidate in (REPO.parent / "shared", REPO.parent.parent / "shared"):
        if (candidate / "longhorn").is_dir():
            return candidate
    raise FileNotFoundError(f"shared/ not found beside {REPO}; set LONGHORN_BI_SHARED")


def crd_documents(version_line: str) -> list[dict[str, Any]]:
    """Longhorn's CRDs for "1.6" (v1.6.4) or "1.12" (v1.12.1)."""
    name = "crds-v1.6.yaml" if version_line == "1.6" else "crds.yaml"
    return [d for d in yaml.safe_load_all((shared_dir() / "longhorn" / name).read_text()) if d]


def seed_manifests() -> list[str]:
    """The three YAML manifests in the seed (Longhorn's backing image backup page), as text.

    A manifest starts at `apiVersion:` and runs while lines are indented or are one of the
    top-level keys of an object; the prose between them ends it.
    """
    manifests: list[str] = []
    current: list[str] | None = None
    for line in (shared_dir() / "seeds" / SEED_NAME).read_text().splitlines():
        if line.startswith("apiVersion:"):
            current = [line]
            manifests.append("")
        elif current is not None and (
            line.startswith((" ", "\t")) or line.split(":")[0] in {"kind", "metadata", "spec"}
        ):
            current.append(line)
        else:
            current = None
        if current is not None:
            manifests[-1] = "\n".join(current) + "\n"
    return manifests


def run_cli(
    *args: str,
    stdin: bytes | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run the installed plugin executable as a user would, capturing its output."""
    return subprocess.run(
        [str(PLUGIN), *args],
        input=stdin.decode() if stdin is not None else None,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=60,
        check=False,
    )


def crd_schema(kind: str, version_line: str) -> dict[str, Any]:
    """The v1beta2 openAPIV3Schema of `kind` in Longhorn's CRDs of that line."""
    for crd in crd_documents(version_line):
        if crd["spec"]["names"]["kind"] == kind:
            for served in crd["spec"]["versions"]:
                if served["name"] == "v1beta2":
                    schema: dict[str, Any] = served["schema"]["openAPIV3Schema"]
                    return schema
    raise KeyError(kind)


def pruned_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields the API server would prune: not declared by a structural schema."""
    if schema.get("x-kubernetes-preserve-unknown-fields") or not isinstance(value, dict):
        return []
    properties = schema.get("properties")
    extra = schema.get("additionalProperties")
    found: list[str] = []
    for key, child in value.items():
        if path == "" and key == "metadata":
            continue
        if properties is not None and key in properties:
            found += pruned_fields(child, properties[key], f"{path}.{key}")
        elif isinstance(extra, dict):
            found += pruned_fields(child, extra, f"{path}.{key}")
        else:
            found.append(f"{path}.{key}")
    return found


def assert_conforms_to_crd(obj: dict[str, Any], version_line: str) -> None:
    """`obj` validates against its CRD schema and loses no field to pruning."""
    import jsonschema

    schema = crd_schema(obj["kind"], version_line)
    jsonschema.Draft7Validator(schema).validate(obj)
    assert pruned_fields(obj, schema) == [], (
        f"fields the API server would drop: {pruned_fields(obj, schema)}"
    )
