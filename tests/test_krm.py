"""The KRM function (`validate --krm`, `longhorn-bi-krm`, the image's default command) on
ResourceLists shaped as kustomize and kpt send them, and under the real kpt."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from longhorn_bi.engine.manifests import backup_manifest, restore_manifest
from longhorn_bi.engine.versions import LonghornVersion
from tests.support import REPO, VENV_BIN, readme_snippet, run_cli
from tests.test_image import dockerfile_stages

BAD_RESTORE = restore_manifest(
    "parrot-restore",
    backup_url="s3://backupbucket@us-east-1/?backingImage=parrot",
    concurrent_limit="0",
)
# A backup without spec.backingImage: an error from Longhorn 1.8 on, fine before.
OLD_STYLE_BACKUP = backup_manifest("parrot", version=LonghornVersion.parse("1.6"))


def kustomize_item(obj: dict[str, Any], number: int) -> dict[str, Any]:
    """An item as kustomize sends it to a validator: its ResId and index annotations, no
    path (kustomize/api/internal/plugins/fnplugin/fnplugin.go, kyaml's runfn)."""
    annotations = {
        "config.k8s.io/id": str(number + 1),
        "config.kubernetes.io/index": str(number),
        "internal.config.kubernetes.io/index": str(number),
        "internal.config.kubernetes.io/annotations-migration-resource-id": str(number),
    }
    return {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}


def kustomize_function_config() -> dict[str, Any]:
    """The README's validator, as kustomize hands it over: with `local-config` injected."""
    config: dict[str, Any] = yaml.safe_load(readme_snippet("kustomize-validator"))
    config["metadata"]["annotations"]["config.kubernetes.io/local-config"] = "true"
    return config


def image_default_command() -> list[str]:
    """ENTRYPOINT + CMD of the image's final stage, run from this venv."""
    final = dockerfile_stages()[-1]
    entrypoint = json.loads(final["ENTRYPOINT"][-1])
    command = json.loads(final["CMD"][-1])
    return [str(VENV_BIN / entrypoint[0]), *entrypoint[1:], *command]


def run_function(text: str, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command or [str(VENV_BIN / "kubectl-longhorn_bi"), "validate", "--krm"],
        input=text,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def resource_list(items: list[Any], config: Any = None) -> str:
    document: dict[str, Any] = {
        "apiVersion": "config.kubernetes.io/v1",
        "kind": "ResourceList",
        "items": items,
    }
    if config is not None:
        document["functionConfig"] = config
    return yaml.safe_dump(document, sort_keys=False)


def test_a_kustomize_resource_list_through_the_images_default_command() -> None:
    configmap = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app"}}
    items = [kustomize_item(BAD_RESTORE, 0), configmap, kustomize_item(OLD_STYLE_BACKUP, 1)]
    text = resource_list(items, kustomize_function_config())
    result = run_function(text, image_default_command())
    assert result.returncode == 1, result.stderr
    # Items (and the ConfigMap without annotations) pass through as they came.
    assert result.stdout.startswith(text.rstrip() + "\n")
    output = yaml.safe_load(result.stdout)
    assert output["items"] == items
    assert output["functionConfig"] == kustomize_function_config()
    by_rule = {r["tags"]["rule"]: r for r in output["results"]}
    assert by_rule["LHB202"] == {
        "message": by_rule["LHB202"]["message"],
        "severity": "error",
        "resourceRef": {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackingImage",
            "name": "parrot-restore",
            "namespace": "longhorn-system",
        },
        "field": {"path": "spec.sourceParameters.concurrent-limit"},
        "tags": {"rule": "LHB202"},
    }
    assert by_rule["LHB202"]["message"].startswith('[LHB202] concurrent-limit is "0"')
    # The functionConfig's longhornVersion "1.9" applies: a backup must name its image.
    assert by_rule["LHB302"]["resourceRef"]["kind"] == "BackupBackingImage"
    assert not any(r["resourceRef"].get("kind") == "ConfigMap" for r in output["results"])


def kpt_item(obj: dict[str, Any], path: str, index: int, legacy: bool = True) -> dict[str, Any]:
    """An item as kpt v1 sends it (seen with `kpt fn eval --exec`): path and index, in the
    internal annotations and, for older functions, the legacy ones."""
    annotations = {
        "internal.config.kubernetes.io/index": str(index),
        "internal.config.kubernetes.io/path": path,
        "internal.config.kubernetes.io/seqindent": "compact",
        "internal.config.kubernetes.io/id": str(index + 1),
    }
    if legacy:
        annotations |= {"config.kubernetes.io/index": str(index), "config.kubernetes.io/path": path}
    return {**obj, "metadata": {**obj["metadata"], "annotations": annotations}}


def test_a_kpt_resource_list_gets_file_paths_and_indexes() -> None:
    items = [
        kpt_item(BAD_RESTORE, "restores/parrot.yaml", 1),
        kpt_item(OLD_STYLE_BACKUP, "backups.yaml", 0, legacy=False),
    ]
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "function-input"}}
    result = run_function(resource_list(items, {**config, "data": {"longhornVersion": "1.6"}}))
    assert result.returncode == 1, result.stderr
    results = yaml.safe_load(result.stdout)["results"]
    files = {r["tags"]["rule"]: r.get("file") for r in results}
    assert files["LHB202"] == {"path": "restores/parrot.yaml", "index": 1}
    # On 1.6 the backup without spec.backingImage is right: no LHB302.
    assert "LHB302" not in files
    assert all(r["severity"] in ("error", "warning") for r in results)


def test_strictness_and_version_come_from_the_function_config() -> None:
    warning_only = {
        **BAD_RESTORE,
        "spec": {
            **BAD_RESTORE["spec"],
            "sourceParameters": {"backup-url": "s3://backupbucket@us-east-1/?backingImage=parrot"},
        },
    }
    config: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
    lenient = run_function(resource_list([warning_only], {**config, "data": {"strict": "false"}}))
    strict = run_function(resource_list([warning_only], {**config, "data": {"strict": "true"}}))
    severities = {r["severity"] for r in yaml.safe_load(lenient.stdout)["results"]}
    assert severities == {"warning"}
    assert (lenient.returncode, strict.returncode) == (0, 1)
    # A typed config object carries them under spec.
    typed = {"apiVersion": "longhorn-bi.io/v1", "kind": "Validator", "spec": {"strict": True}}
    assert run_function(resource_list([warning_only], typed)).returncode == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"longhornVersion": "0.9"}, "functionConfig.data.longhornVersion:"),
        ({"strict": "yes please"}, "functionConfig.data.strict: 'yes please' is not a boolean"),
        ({"version": "1.9"}, "functionConfig.data.version: not an option of this function"),
    ],
)
def test_a_bad_function_config_names_the_field(data: dict[str, str], message: str) -> None:
    config = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": data}
    result = run_function(resource_list([BAD_RESTORE], config))
    assert result.returncode == 2
    assert message in result.stderr


def test_input_that_is_not_a_resource_list_is_refused_clearly() -> None:
    result = run_function("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n")
    assert result.returncode == 2
    assert "standard input is not a ResourceList" in result.stderr
    assert "leave --krm out" in result.stderr
    usage = run_cli("validate", "--krm", "manifests/", stdin=b"")
    assert usage.returncode == 2 and "give no PATH" in usage.stderr


def test_json_input_and_the_dedicated_entry_point() -> None:
    text = json.dumps(
        {"apiVersion": "config.kubernetes.io/v1", "kind": "ResourceList", "items": [BAD_RESTORE]}
    )
    result = run_function(text, [str(VENV_BIN / "longhorn-bi-krm"), "--longhorn-version", "1.9"])
    assert result.returncode == 1, result.stderr
    output = yaml.safe_load(result.stdout)
    assert output["items"] == [BAD_RESTORE]
    assert "file" not in output["results"][0]


def test_an_empty_resource_list_passes() -> None:
    result = run_function("apiVersion: config.kubernetes.io/v1\nkind: ResourceList\nitems: []\n")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["results"] == []


KPT = shutil.which("kpt")


def run_in(directory: Path, command: list[str]) -> subprocess.CompletedProcess[str]:
    """`command` in `directory` with only this venv and the system's tools on PATH."""
    return subprocess.run(
        command,
        cwd=directory,
        env={"PATH": f"{VENV_BIN}:/usr/bin:/bin", "HOME": str(directory)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.skipif(KPT is None, reason="kpt is not on PATH")
def test_the_readme_kpt_command_under_the_real_kpt(tmp_path: Path) -> None:
    exec_line = readme_snippet("kpt").splitlines()[0]
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    good = (REPO / "examples" / "gitops" / "good.yaml").read_text()
    (manifests / "good.yaml").write_text(good)
    (manifests / "app.yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a # kept\ndata:\n  on: yes\n"
    )
    before = {p.name: p.read_bytes() for p in manifests.iterdir()}
    words = shlex.split(exec_line)
    passed = run_in(tmp_path, words)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert {p.name: p.read_bytes() for p in manifests.iterdir()} == before

    (manifests / "bad.yaml").write_text((REPO / "examples" / "gitops" / "bad.yaml").read_text())
    before_options = words.index("--")
    failed = run_in(
        tmp_path, [*words[:before_options], "--results-dir", "results", *words[before_options:]]
    )
    assert failed.returncode != 0
    results = yaml.safe_load((tmp_path / "results" / "results.yaml").read_text())
    found = results["items"][0]["results"]
    lhb202 = next(r for r in found if r["tags"]["rule"] == "LHB202")
    assert lhb202["file"]["path"] == "bad.yaml"
    assert lhb202["field"]["path"] == "spec.sourceParameters.concurrent-limit"


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl is not on PATH")
def test_the_readme_kustomization_under_kubectls_kustomize(tmp_path: Path) -> None:
    # kustomize starts a container function with `docker run ... IMAGE`; a `docker` on PATH
    # that checks those arguments and runs the image's default command from this venv lets
    # the real kustomize drive the function without a container engine.
    image = yaml.safe_load(readme_snippet("kustomize-validator"))["metadata"]["annotations"]
    image = yaml.safe_load(image["config.kubernetes.io/function"])["container"]["image"]
    shim = tmp_path / "bin" / "docker"
    shim.parent.mkdir()
    shim.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = run ] && [ "$(eval echo \\${{$#}})" = {shlex.quote(image)} ] || exit 99\n'
        f"exec {shlex.join(image_default_command())}\n"
    )
    shim.chmod(0o755)
    build = tmp_path / "build"
    build.mkdir()
    (build / "kustomization.yaml").write_text(readme_snippet("kustomization"))
    (build / "longhorn-bi.yaml").write_text(readme_snippet("kustomize-validator"))
    good = (REPO / "examples" / "gitops" / "good.yaml").read_text()
    (build / "backing-images.yaml").write_text(good)
    command = [str(KUBECTL), "kustomize", "--enable-alpha-plugins", "."]
    env = {"PATH": f"{shim.parent}:/usr/bin:/bin", "HOME": str(tmp_path)}
    passed = subprocess.run(
        command, cwd=build, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert passed.returncode == 0, passed.stderr

    # What kustomize builds is the input (in kustomize's order), unchanged by the function.
    def by_kind(text: str) -> list[Any]:
        return sorted(yaml.safe_load_all(text), key=lambda o: (o["kind"], o["metadata"]["name"]))

    assert by_kind(passed.stdout) == by_kind(good)

    (build / "backing-images.yaml").write_text(
        (REPO / "examples" / "gitops" / "bad.yaml").read_text()
    )
    failed = subprocess.run(
        command, cwd=build, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert failed.returncode != 0
    assert (
        "BackingImage/parrot-restore: error: spec.sourceParameters.concurrent-limit: [LHB202]"
        in failed.stderr
    )
