"""`kubectl longhorn-bi validate` end to end: real files, real process, every output format."""

from __future__ import annotations

import json
import re
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tests.support import REPO, run_cli, seed_manifests

EXAMPLES = REPO / "examples" / "gitops"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_the_seed_manifests_validate_clean_on_1_6(tmp_path: Path) -> None:
    for number, text in enumerate(seed_manifests()):
        write(tmp_path / f"seed-{number}.yaml", text)
    result = run_cli("validate", str(tmp_path), "--longhorn-version", "1.6", "--strict")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 documents checked, 0 skipped: 0 errors, 0 warnings" in result.stdout


def test_findings_carry_file_line_column_rule_and_fix() -> None:
    result = run_cli("validate", str(EXAMPLES / "bad.yaml"), str(EXAMPLES / "good.yaml"))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert (
        f"{EXAMPLES / 'bad.yaml'}:11:5: error [LHB202] spec.sourceParameters.concurrent-limit:"
        in "\n".join(lines)
    )
    assert any(
        ":21:3: error [LHB005] spec.userCreated:" in line and "without quotes" in line
        for line in lines
    )
    # The backing image named by the backup is not among the BackingImages in the set.
    assert any(
        "[LHB402]" in line and "'ubuntu' does not exist in the given files" in line
        for line in lines
    )
    assert lines[-1] == "5 documents checked, 0 skipped: 4 errors, 1 warning"


def test_json_output_has_the_documented_shape() -> None:
    result = run_cli("validate", str(EXAMPLES), "-o", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["summary"] == {"documents": 5, "skipped": 0, "errors": 4, "warnings": 1}
    keys = {"file", "line", "column", "kind", "name", "rule", "severity", "path", "message"}
    assert all(set(item) == keys for item in report["results"])
    assert {r["rule"] for r in report["results"]} == {
        "LHB201",
        "LHB202",
        "LHB103",
        "LHB402",
        "LHB005",
    }


def test_good_files_pass_and_other_kinds_are_skipped(tmp_path: Path) -> None:
    manifest = (EXAMPLES / "good.yaml").read_text()
    write(
        tmp_path / "all.yaml",
        manifest + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
    )
    result = run_cli("validate", str(tmp_path), "-o", "json")
    assert result.returncode == 0, result.stdout
    assert json.loads(result.stdout)["summary"] == {
        "documents": 3,
        "skipped": 1,
        "errors": 0,
        "warnings": 0,
    }


def test_facts_are_gathered_across_files(tmp_path: Path) -> None:
    backup = "apiVersion: longhorn.io/v1beta2\nkind: BackupBackingImage\nmetadata:\n  name: parrot\n  namespace: longhorn-system\nspec:\n  userCreated: true\n"
    write(tmp_path / "a-backup.yaml", backup)
    empty_setting = "apiVersion: longhorn.io/v1beta2\nkind: Setting\nmetadata:\n  name: backup-target\n  namespace: longhorn-system\nvalue: ''\n"
    write(tmp_path / "z-setting.yaml", empty_setting)
    result = run_cli("validate", str(tmp_path), "--longhorn-version", "1.6")
    assert result.returncode == 1
    assert "[LHB401]" in result.stdout and "has no URL" in result.stdout
    write(tmp_path / "z-setting.yaml", empty_setting.replace("''", "s3://backupbucket@us-east-1/"))
    assert run_cli("validate", str(tmp_path), "--longhorn-version", "1.6").returncode == 0


def test_warnings_fail_only_under_strict(tmp_path: Path) -> None:
    text = seed_manifests()[2].replace("    checksum:", "    #checksum:")
    write(tmp_path / "restore.yaml", text)
    assert run_cli("validate", str(tmp_path)).returncode == 0
    strict = run_cli("validate", str(tmp_path), "--strict")
    assert strict.returncode == 1
    assert "[LHB204]" in strict.stdout


def test_standard_input(tmp_path: Path) -> None:
    result = run_cli("validate", "-", stdin=seed_manifests()[2].replace('"2"', '"0"').encode())
    assert result.returncode == 1
    assert result.stdout.startswith("<stdin>:12:9: error [LHB202]")


def test_junit_output_is_valid_xml_with_a_failure_per_error() -> None:
    result = run_cli("validate", str(EXAMPLES), "-o", "junit")
    root = ElementTree.fromstring(result.stdout)
    failures = root.findall(".//failure")
    assert len(failures) == 4
    assert {f.get("type") for f in failures} == {"LHB201", "LHB202", "LHB103", "LHB005"}
    assert len(root.findall(".//testcase")) == 5


def test_sarif_output_names_rules_and_regions() -> None:
    sarif = json.loads(run_cli("validate", str(EXAMPLES), "-o", "sarif").stdout)
    run = sarif["runs"][0]
    assert sarif["version"] == "2.1.0"
    rule_ids = {r["id"] for r in run["tool"]["driver"]["rules"]}
    assert {r["ruleId"] for r in run["results"]} <= rule_ids
    region = run["results"][0]["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] >= 1 and region["startColumn"] >= 1
    # Each rule's metadata names the Longhorn files it encodes.
    by_id = {r["id"]: r for r in run["tool"]["driver"]["rules"]}
    assert all(r["properties"]["longhornSource"] for r in by_id.values())
    assert "webhook/resources/backingimage/validator.go (1.6-1.12)" in " ".join(
        by_id["LHB103"]["properties"]["longhornSource"]
    )


def test_github_annotations() -> None:
    result = run_cli("validate", str(EXAMPLES / "bad.yaml"), "-o", "github")
    first = result.stdout.splitlines()[0]
    assert first.startswith(f"::error file={EXAMPLES / 'bad.yaml'},line=10,col=5,title=LHB201::")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"a: [1, 2\n", "YAML syntax error"),
        (b"kind: BackingImage\nkind: BackingImage\n", "duplicate key 'kind'"),
        (b"kind: \xff\xfe\n", "not UTF-8"),
    ],
)
def test_unparseable_files_are_errors_with_a_position(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "broken.yaml"
    path.write_bytes(content)
    result = run_cli("validate", str(path), "-o", "json")
    assert result.returncode == 1
    [item] = json.loads(result.stdout)["results"]
    assert item["rule"] == "LHB000" and expected in item["message"] and item["line"] >= 1
    assert "Traceback" not in result.stderr


def test_an_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    bomb = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    previous = "a"
    for level in "bcdefghij":
        bomb += f"{level}: &{level} [" + ",".join([f"*{previous}"] * 9) + "]\n"
        previous = level
    result = run_cli("validate", str(write(tmp_path / "bomb.yaml", bomb)))
    assert result.returncode == 1
    assert "alias" in result.stdout


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(33 * 1024 * 1024)  # sparse: costs no disk
    result = run_cli("validate", str(path))
    assert result.returncode == 1
    assert "larger than 32 MiB" in result.stdout


def test_an_empty_file_is_noted_and_nothing_else_is_checked(tmp_path: Path) -> None:
    write(tmp_path / "empty.yaml", "")
    result = run_cli("validate", str(tmp_path / "empty.yaml"))
    # Nothing at all to validate is a usage error, said plainly.
    assert result.returncode == 2
    assert "empty file" in result.stderr and "no manifests found" in result.stderr
    write(tmp_path / "good.yaml", (EXAMPLES / "good.yaml").read_text())
    both = run_cli("validate", str(tmp_path))
    assert both.returncode == 0 and "empty.yaml: no documents (empty file)" in both.stderr


def test_missing_paths_and_empty_directories_are_usage_errors(tmp_path: Path) -> None:
    missing = run_cli("validate", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
    (tmp_path / "README.txt").write_text("not a manifest")
    empty = run_cli("validate", str(tmp_path))
    assert empty.returncode == 2 and "no manifests in this directory" in empty.stderr
    assert "Traceback" not in missing.stderr + empty.stderr


def test_an_unknown_longhorn_version_is_a_usage_error() -> None:
    result = run_cli("validate", str(EXAMPLES), "--longhorn-version", "1.5")
    assert result.returncode == 2
    assert "not supported" in result.stderr


def test_every_rule_cites_its_longhorn_source() -> None:
    catalogue = json.loads(run_cli("rules", "-o", "json").stdout)
    versions = re.compile(r"1\.(\d+)(?:-1\.(\d+))?\Z")
    for rule in catalogue:
        assert rule["source"], f"{rule['id']} cites no Longhorn source"
        for cited in rule["source"]:
            assert cited["repo"].startswith("longhorn/") and cited["path"], rule["id"]
            match = versions.match(cited["versions"])
            assert match, f"{rule['id']}: {cited['versions']!r} is not a version range"
            lines = [int(minor) for minor in match.groups() if minor]
            assert all(6 <= minor <= 12 for minor in lines) and lines == sorted(lines)
    markdown = run_cli("rules", "-o", "markdown").stdout
    assert "longhorn-manager `webhook/resources/backingimage/validator.go` (1.7-1.12)" in markdown


def test_rules_catalogue_in_the_readme_is_current() -> None:
    catalogue = run_cli("rules", "-o", "markdown").stdout.strip()
    assert catalogue in (REPO / "README.md").read_text(), (
        "regenerate: kubectl longhorn-bi rules -o markdown"
    )
