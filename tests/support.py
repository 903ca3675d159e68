"""Paths and data the tests share: Longhorn's vendored CRDs and documented manifests (tests/data)."""

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


LONGHORN_DATA = REPO / "tests" / "data" / "longhorn"
# The conformance corpus (tests/conformance/cases): Longhorn's documented manifests among them.
CORPUS = REPO / "tests" / "conformance" / "cases"
# The newest patch release of each version line (tests/data/longhorn/README.md).
CRD_FILES = {
    "1.6": "crds-v1.6.4.yaml",
    "1.7": "crds-v1.7.3.yaml",
    "1.8": "crds-v1.8.2.yaml",
    "1.9": "crds-v1.9.2.yaml",
    "1.10": "crds-v1.10.2.yaml",
    "1.11": "crds-v1.11.3.yaml",
    "1.12": "crds-v1.12.1.yaml",
}


# Longhorn's Volume CRD, in a file of its own (tests/data/longhorn/README.md): the fake API
# server serves it beside the four CRDs above for the export rule's volume facts.
VOLUME_CRD_FILES = {"1.6": "crd-volume-v1.6.4.yaml", "1.12": "crd-volume-v1.12.1.yaml"}


def volume_crd_file(version_line: str) -> Path:
    """Longhorn's vendored Volume CRD of a version line ("1.6" or "1.12")."""
    return LONGHORN_DATA / VOLUME_CRD_FILES[version_line]


def crd_file(version_line: str) -> Path:
    """Longhorn's CRDs (vendored) for a version line, "1.6" (v1.6.4) to "1.12" (v1.12.1)."""
    return LONGHORN_DATA / CRD_FILES[version_line]


def crd_documents(version_line: str) -> list[dict[str, Any]]:
    """Longhorn's CRDs for a version line, "1.6" to "1.12"."""
    return [d for d in yaml.safe_load_all(crd_file(version_line).read_text()) if d]


def seed_manifests() -> list[str]:
    """The three manifests of Longhorn's "Backing Image Backup" page (v1.6), as text: the
    documents after the corpus case's header."""
    text = (CORPUS / "docs" / "backing-image-backup-v1.6.yaml").read_text()
    return [part.lstrip("\n") for part in text.split("\n---\n")[1:]]


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


def readme_snippet(name: str) -> str:
    """The fenced block after `<!-- snippet: NAME -->` in README.md, as written there."""
    text = (REPO / "README.md").read_text()
    marker = f"<!-- snippet: {name} -->\n```"
    start = text.index(marker) + len(marker)
    body_start = text.index("\n", start) + 1
    return text[body_start : text.index("\n```", body_start) + 1]
