"""The container image, read statically (no Docker engine on these machines): a pinned base,
hash-checked runtime dependencies, no installer in the final stage, non-root, labelled; the
chart names the webhook's command; the locks hold hashes; the README's `docker run` lines work."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import yaml

from tests.support import REPO, readme_snippet, run_cli

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
VERSION = PYPROJECT["project"]["version"]
DIGEST = re.compile(r"^[\w.\-/:]+@sha256:[0-9a-f]{64}$")
REQUIREMENT = re.compile(r"^([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?==([^ ;\\]+)")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in (REPO / "Dockerfile").read_text().splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pending += stripped[:-1] + " " if stripped.endswith("\\") else stripped
        if not stripped.endswith("\\"):
            keyword, _, arguments = pending.partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
            pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    return instructions


def dockerfile_stages() -> list[dict[str, list[str]]]:
    """Each stage's instructions by name; ARGs before the first FROM form stage 0."""
    stages: list[dict[str, list[str]]] = [{}]
    for keyword, arguments in dockerfile_instructions():
        if keyword == "FROM":
            stages.append({})
        stages[-1].setdefault(keyword, []).append(arguments)
    return stages


def arg_default(stage: dict[str, list[str]], name: str) -> str:
    for argument in stage.get("ARG", []):
        key, _, value = argument.partition("=")
        if key == name:
            return value
    raise KeyError(name)


def test_the_base_image_is_pinned_by_digest_in_every_stage() -> None:
    global_args, *stages = dockerfile_stages()
    base = arg_default(global_args, "BASE")
    assert DIGEST.match(base), base
    assert base.startswith("python:3.11-slim@")
    for stage in stages:
        [source] = stage["FROM"]
        assert source.split()[0] in ("${BASE}", base)


def test_runtime_dependencies_come_from_the_hashed_lock_as_wheels() -> None:
    build = dockerfile_stages()[1]
    installs = [run for run in build["RUN"] if "-r requirements/runtime.txt" in run]
    assert len(installs) == 1
    assert "--require-hashes" in installs[0]
    assert "--only-binary=:all:" in installs[0]
    assert "--no-deps" in installs[0]
    assert "COPY requirements/runtime.txt requirements/runtime.txt" in [
        f"COPY {c}" for c in build["COPY"]
    ]
    # Our own package: no index, no dependencies; then the venv loses its installers.
    own = next(run for run in build["RUN"] if "wheel" in run and "--no-index" in run)
    assert "uninstall --yes" in own and own.rstrip().endswith("setuptools pip")


def test_the_final_stage_installs_nothing_and_removes_the_installers() -> None:
    final = dockerfile_stages()[-1]
    for run in final.get("RUN", []):
        assert not re.search(
            r"pip3?(\.\d+)? +install|-m +pip|-m +ensurepip|setup\.py|easy_install", run
        )
    [removal] = final["RUN"]
    for path in (
        "/usr/local/lib/python3.11/site-packages/*",
        "/usr/local/lib/python3.11/ensurepip",
        "/usr/local/bin/pip",
        "/usr/local/bin/pip3",
        "/usr/local/bin/wheel",
    ):
        assert path in removal.split(), path
    assert final["COPY"] == ["--from=build /opt/venv /opt/venv"]


def test_the_image_runs_as_non_root_with_its_version_label() -> None:
    final = dockerfile_stages()[-1]
    [user] = final["USER"]
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) > 0 and gid.isdigit() and int(gid) > 0
    assert arg_default(final, "VERSION") == VERSION
    labels = " ".join(final["LABEL"])
    assert 'org.opencontainers.image.version="${VERSION}"' in labels


def test_the_default_command_is_the_plugin_as_a_krm_function() -> None:
    final = dockerfile_stages()[-1]
    entrypoint = json.loads(final["ENTRYPOINT"][-1])
    assert entrypoint == ["kubectl-longhorn_bi"]
    assert entrypoint[0] in PYPROJECT["project"]["scripts"]
    assert json.loads(final["CMD"][-1]) == ["validate", "--krm"]
    assert final["WORKDIR"] == ["/work"]


def chart_containers(template: str) -> list[dict[str, Any]]:
    """The containers of a chart template, its Go template lines read as plain text."""
    text = (REPO / "charts" / "longhorn-bi-webhook" / "templates" / template).read_text()
    found = []
    for match in re.finditer(r"^( +)- name: (\w+)\n((?:\1  .*\n)+)", text, re.MULTILINE):
        body = "\n".join(line[len(match.group(1)) + 2 :] for line in match.group(3).splitlines())
        if not re.search(r"^image:", body, re.MULTILINE):
            continue  # a port, a volume or an env var, not a container
        commands = [line for line in body.splitlines() if line.startswith("command:")]
        found.append({"name": match.group(2), **yaml.safe_load("\n".join(commands) or "{}")})
    return found


def test_the_chart_names_the_webhooks_command_whatever_the_images_default() -> None:
    for template, name in (("deployment.yaml", "webhook"), ("certgen-job.yaml", "certs")):
        [container] = [c for c in chart_containers(template) if c["name"] == name]
        assert container["command"] == ["longhorn-bi-webhook"], template
    assert "longhorn-bi-webhook" in PYPROJECT["project"]["scripts"]


def locked(path: Path) -> dict[str, str]:
    """name -> version of a lock, asserting that every requirement carries a hash."""
    text = path.read_text().replace("\\\n", " ")
    versions = {}
    for line in text.splitlines():
        match = REQUIREMENT.match(line)
        if match:
            assert "--hash=sha256:" in line, line
            versions[match.group(1).lower().replace("_", "-")] = match.group(2)
    return versions


def test_the_locks_are_hashed_and_agree() -> None:
    full = locked(REPO / "requirements" / "lock.txt")
    runtime = locked(REPO / "requirements" / "runtime.txt")
    assert {name: full[name] for name in runtime} == runtime
    for requirement in PYPROJECT["project"]["dependencies"]:
        name = re.split(r"[<>=\[ ]", requirement)[0].lower()
        assert name in runtime, name
    for tool in ("pre-commit", "uv", "pytest", "setuptools", "wheel"):
        assert tool in full and tool not in runtime
    # 37.0.2 pins python-dateutil against botocore's pin (see pyproject.toml).
    kubernetes = tuple(int(part) for part in full["kubernetes"].split("."))
    assert kubernetes < (37, 0, 2)


def test_the_readme_docker_run_lines(tmp_path: Path) -> None:
    mounted, piped = readme_snippet("docker-run").splitlines()
    good = (REPO / "examples" / "gitops" / "good.yaml").read_text()
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "good.yaml").write_text(good)
    words = shlex.split(mounted)
    image_at = next(i for i, w in enumerate(words) if w.startswith("ghcr.io/"))
    assert words[image_at] == f"ghcr.io/longhorn-bi/longhorn-bi:{VERSION}"
    assert '-v "$PWD:/work:ro"' in mounted  # the image's WORKDIR
    result = run_cli(*words[image_at + 1 :], cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    (tmp_path / "manifests" / "bad.yaml").write_text(
        (REPO / "examples/gitops/bad.yaml").read_text()
    )
    assert run_cli(*words[image_at + 1 :], cwd=tmp_path).returncode == 1

    render, consume = piped.split(" | ")
    assert render.startswith("helm template")
    consumer = shlex.split(consume)
    assert "-i" in consumer  # standard input reaches the container
    image_at = consumer.index(f"ghcr.io/longhorn-bi/longhorn-bi:{VERSION}")
    stream = f"---\n# Source: app/templates/images.yaml\n{good}---\n"
    result = run_cli(*consumer[image_at + 1 :], stdin=stream.encode())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 documents checked" in result.stdout


def test_dockerignore_keeps_what_the_build_copies() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    copied = {c.split()[0].rstrip("/") for c in dockerfile_stages()[1]["COPY"]}
    assert not {c.split("/")[0] for c in copied} & ignored
