"""`validate` on what pipelines produce: `helm template`, `kustomize build`, lists, and
streams whose objects carry the KRM path annotations (`kpt fn source`)."""

from __future__ import annotations

import json
from typing import Any

from tests.support import REPO, run_cli

BAD = (REPO / "examples" / "gitops" / "bad.yaml").read_text()
GOOD = (REPO / "examples" / "gitops" / "good.yaml").read_text()
RESTORE_ZERO_LIMIT = """\
apiVersion: longhorn.io/v1beta2
kind: BackingImage
metadata:
  name: parrot-restore
  namespace: longhorn-system
spec:
  sourceType: restore
  sourceParameters:
    backup-url: s3://backupbucket@us-east-1/?backingImage=parrot
    concurrent-limit: "0"
"""


def report(*args: str, stdin: str) -> tuple[int, dict[str, Any]]:
    result = run_cli("validate", "-", "-o", "json", *args, stdin=stdin.encode())
    return result.returncode, json.loads(result.stdout)


def test_helm_template_output_with_comment_only_documents_and_a_trailing_separator() -> None:
    # What `helm template` prints: each document opens with its template's name, an empty
    # template leaves a document of comments only, and the stream may end with `---`.
    stream = (
        "---\n# Source: app/templates/empty.yaml\n# nothing rendered\n"
        "---\n# Source: app/templates/good.yaml\n"
        + GOOD
        + "---\n# Source: app/templates/svc.yaml\n"
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - port: 80\n"
        "---\n"
    )
    code, found = report("--strict", stdin=stream)
    assert code == 0, found
    assert found["summary"] == {"documents": 3, "skipped": 1, "errors": 0, "warnings": 0}


def test_kustomize_build_output_on_stdin_reports_stream_lines() -> None:
    stream = (
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: longhorn-system\n---\n"
        + RESTORE_ZERO_LIMIT
    )
    code, found = report(stdin=stream)
    assert code == 1
    [error] = [r for r in found["results"] if r["severity"] == "error"]
    assert (error["file"], error["line"], error["rule"]) == ("<stdin>", 15, "LHB202")


def test_lists_of_every_kind_are_read() -> None:
    items = "\n".join("  " + line if line else line for line in RESTORE_ZERO_LIMIT.splitlines())
    stream = (
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n"
        "  metadata:\n    name: c\n"
        "---\napiVersion: longhorn.io/v1beta2\nkind: BackingImageList\nitems:\n-" + items[1:] + "\n"
    )
    code, found = report(stdin=stream)
    assert code == 1
    assert found["summary"]["documents"] == 1 and found["summary"]["skipped"] == 1
    assert {r["rule"] for r in found["results"] if r["severity"] == "error"} == {"LHB202"}


def test_findings_name_the_file_of_the_krm_path_annotation() -> None:
    # `kpt fn source` prints a ResourceList whose items say where they came from.
    annotated = RESTORE_ZERO_LIMIT.replace(
        "  namespace: longhorn-system\n",
        "  namespace: longhorn-system\n  annotations:\n"
        "    internal.config.kubernetes.io/path: 'restores/parrot.yaml'\n"
        "    internal.config.kubernetes.io/index: '0'\n",
    )
    items = "\n".join("  " + line for line in annotated.splitlines())
    stream = "apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems:\n-" + items[1:] + "\n"
    code, found = report(stdin=stream)
    assert code == 1
    [error] = [r for r in found["results"] if r["severity"] == "error"]
    # Line 13 of the object: its concurrent-limit, counted from its apiVersion.
    assert (error["file"], error["line"], error["column"]) == ("restores/parrot.yaml", 13, 5)


def test_a_stream_of_comments_only_is_no_manifest() -> None:
    result = run_cli("validate", "-", stdin=b"---\n# Source: app/templates/empty.yaml\n---\n")
    assert result.returncode == 2
    assert "no manifests found" in result.stderr
