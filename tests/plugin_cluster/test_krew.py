"""The krew manifest template, rendered as krew-release-bot would, and its completion caveat."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from pathlib import Path

import yaml

from tests.support import PLUGIN, REPO

TEMPLATE = REPO / "deploy" / "krew" / "longhorn-bi.yaml"


def render(text: str, tag: str) -> str:
    """krew-release-bot's two template functions: .TagName and addURIAndSha."""
    sha = hashlib.sha256(b"archive").hexdigest()

    def uri_and_sha(match: re.Match[str]) -> str:
        indent = match.group(1)
        url = match.group(2).replace("{{ .TagName }}", tag)
        return f"{indent}uri: {url}\n{indent}sha256: {sha}"

    text = re.sub(
        r'^( *)\{\{ addURIAndSha "([^"]+)" \.TagName \}\}$', uri_and_sha, text, flags=re.M
    )
    return text.replace("{{ .TagName }}", tag)


def test_the_rendered_manifest_is_a_krew_plugin_that_installs_the_executable():
    manifest = yaml.safe_load(render(TEMPLATE.read_text(), "v0.1.0"))
    assert manifest["apiVersion"] == "krew.googlecontainertools.github.com/v1alpha2"
    assert manifest["kind"] == "Plugin"
    # krew links `bin` as kubectl-longhorn_bi, which kubectl runs as `kubectl longhorn-bi`.
    assert manifest["metadata"]["name"] == "longhorn-bi"
    spec = manifest["spec"]
    assert spec["version"] == "v0.1.0"
    assert spec["shortDescription"] and spec["description"] and spec["homepage"]
    (platform,) = spec["platforms"]
    assert platform["bin"] == PLUGIN.name == "kubectl-longhorn_bi"
    assert platform["uri"].endswith("/v0.1.0/kubectl-longhorn_bi.tar.gz")
    assert re.fullmatch(r"[0-9a-f]{64}", platform["sha256"])
    assert {"from": "kubectl-longhorn_bi", "to": "."} in platform["files"]
    assert platform["selector"]["matchExpressions"][0]["key"] == "os"


def test_the_caveats_completion_link_works(tmp_path: Path):
    caveats = yaml.safe_load(render(TEMPLATE.read_text(), "v0.1.0"))["spec"]["caveats"]
    command = next(line.strip() for line in caveats.splitlines() if line.strip().startswith("ln "))
    # The caveat's link, made in a scratch krew root beside a copy of the plugin's entry.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kubectl-longhorn_bi").symlink_to(PLUGIN)
    subprocess.run(
        ["sh", "-c", command],
        env={**os.environ, "KREW_ROOT": str(tmp_path)},
        cwd=bin_dir,
        check=True,
    )
    link = bin_dir / "kubectl_complete-longhorn_bi"
    assert link.is_symlink()
    result = subprocess.run(
        [str(link), "desc"], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.splitlines() == [
        "describe\tShow a backup: spec, status, its backup...",
        ":4",
    ]
