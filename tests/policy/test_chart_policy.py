"""The chart's mode policy/both: its policy template and the validations file it reads.

Helm is not on the test machines: the file is compared with the generator, the template's
key fields are checked as text, and `helm template` runs when helm is on PATH.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import jsonschema
import pytest
import yaml

from longhorn_bi.engine.policy import chart_validations, policy_documents
from longhorn_bi.engine.versions import LonghornVersion

CHART = Path(__file__).resolve().parents[2] / "charts" / "longhorn-bi-webhook"
TEMPLATE = CHART / "templates" / "validatingadmissionpolicy.yaml"


def test_the_chart_file_is_the_generator_output() -> None:
    on_disk = json.loads((CHART / "files" / "policy-validations.json").read_text())
    assert on_disk == chart_validations(), "run `make chart-policy`"


def test_the_chart_validations_are_the_cli_ones() -> None:
    validations = chart_validations()["1.9"]
    docs = policy_documents(LonghornVersion.parse("1.9"))
    assert docs[0]["spec"]["validations"] == validations["errors"]
    assert docs[2]["spec"]["validations"] == validations["warnings"]


def test_mode_is_a_value_with_webhook_the_default() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["mode"] == "webhook"
    for mode in ("webhook", "policy", "both"):
        jsonschema.validate({**values, "mode": mode}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**values, "mode": "kyverno"}, schema)


def test_the_template_renders_the_policies_only_outside_webhook_mode() -> None:
    text = TEMPLATE.read_text()
    assert '{{- if ne .Values.mode "webhook" }}' in text
    assert '.Files.Get "files/policy-validations.json"' in text
    assert 'dict "errors" "Deny" "warnings" "Warn"' in text
    assert "kind: ValidatingAdmissionPolicyBinding" in text
    assert "validationActions: [{{ $action }}]" in text
    # The exempt accounts of the webhook, as a double-quoted scalar (the CEL has ' in it).
    assert "{{ $users | quote }}" in text and 'include "lhbw.exemptUsernames"' in text
    assert "needs longhorn.version" in text.replace(
        "need longhorn.version", "needs longhorn.version"
    )


@pytest.mark.skipif(shutil.which("helm") is None, reason="helm is not installed")
def test_helm_template_mode_policy() -> None:  # pragma: no cover - needs helm
    out = subprocess.run(
        ["helm", "template", "t", str(CHART), "--set", "mode=policy", "--set", "longhorn.version=1.8"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    kinds = [d["kind"] for d in yaml.safe_load_all(out) if d]
    assert kinds.count("ValidatingAdmissionPolicy") == 2
    assert kinds.count("ValidatingAdmissionPolicyBinding") == 2
