"""The Helm chart: metadata, values against the schema, and the key fields of each template.

Helm is not installed on the test machines, so the templates are checked as text (kinds,
fields, flags that the CLI really has); `helm template` runs when `helm` is on PATH.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from longhorn_bi import __version__
from longhorn_bi.webhook.cli import certs, serve

CHART = Path(__file__).resolve().parents[2] / "charts" / "longhorn-bi-webhook"
TEMPLATES = CHART / "templates"


def _values() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((CHART / "values.yaml").read_text())
    return loaded


def _schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return loaded


def _text(name: str) -> str:
    return (TEMPLATES / name).read_text()


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["name"] == "longhorn-bi-webhook"
    assert chart["appVersion"] == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", chart["version"])


def test_default_values_validate_and_match_the_issue() -> None:
    values = _values()
    jsonschema.Draft7Validator.check_schema(_schema())
    jsonschema.validate(values, _schema())
    assert values["replicaCount"] == 2
    assert values["webhook"]["failurePolicy"] == "Fail"
    assert values["webhook"]["timeoutSeconds"] == 5
    assert values["longhorn"] == {"namespace": "longhorn-system", "version": "auto"}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("webhook", "failurePolicy"), "Sometimes"),
        (("webhook", "timeoutSeconds"), 31),
        (("longhorn", "version"), "1.5"),
        (("tls", "mode"), "manual"),
        (("replicaCount",), 0),
        (("unknownKey",), True),
    ],
)
def test_the_schema_rejects_bad_values(path: tuple[str, ...], value: Any) -> None:
    values = copy.deepcopy(_values())
    node = values
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(values, _schema())


def test_every_resource_kind_is_present() -> None:
    kinds = set()
    for template in TEMPLATES.glob("*.yaml"):
        kinds |= set(re.findall(r"^kind: (\w+)", template.read_text(), re.M))
    assert kinds == {
        "Deployment",
        "Service",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "ClusterRole",
        "ClusterRoleBinding",
        "PodDisruptionBudget",
        "ValidatingWebhookConfiguration",
        "Certificate",
        "Issuer",
        "Job",
    }


def test_webhook_configuration() -> None:
    text = _text("validatingwebhookconfiguration.yaml")
    assert 'admissionReviewVersions: ["v1"]' in text
    assert "sideEffects: None" in text
    assert "timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}" in text
    assert "failurePolicy: {{ .Values.webhook.failurePolicy }}" in text
    assert 'operations: ["CREATE", "UPDATE"]' in text
    assert "DELETE" not in text
    assert 'resources: ["backingimages", "backupbackingimages"]' in text
    assert 'apiGroups: ["longhorn.io"]' in text
    assert "kubernetes.io/metadata.name: {{ .Values.longhorn.namespace }}" in text
    assert "path: /validate" in text
    assert "cert-manager.io/inject-ca-from: {{ .Release.Namespace }}/" in text


def test_rbac_is_read_only_on_the_resources_used() -> None:
    text = _text("rbac.yaml")
    verbs = re.findall(r"verbs: (\[.*\])", text)
    assert verbs == ['["get", "list", "watch"]', '["get"]']
    assert re.findall(r"resources: (\[.*\])", text) == [
        '["backingimages", "backupbackingimages", "backuptargets", "settings"]',
        '["customresourcedefinitions"]',
    ]
    # The CRD read exists only for --longhorn-version auto, and names the two CRDs read.
    from longhorn_bi.webhook.facts_cache import VERSION_CRDS

    assert 'resourceNames: ["' + '", "'.join(VERSION_CRDS) + '"]' in text
    assert '{{- if eq .Values.longhorn.version "auto" }}' in text


def test_deployment_hardening_and_probes() -> None:
    text = _text("deployment.yaml")
    for needle in (
        "replicas: {{ .Values.replicaCount }}",
        "runAsNonRoot: true",
        "readOnlyRootFilesystem: true",
        "allowPrivilegeEscalation: false",
        'drop: ["ALL"]',
        "path: /readyz",
        "path: /healthz",
        "toYaml .Values.resources",
        'secretName: {{ include "lhbw.tlsSecret" . }}',
    ):
        assert needle in text, needle
    assert "minAvailable: {{ .Values.podDisruptionBudget.minAvailable }}" in _text("pdb.yaml")


def _envvars(command: Any) -> set[str]:
    return {p.envvar for p in command.params if isinstance(getattr(p, "envvar", None), str)}


def test_deployment_env_and_job_flags_exist_in_the_cli() -> None:
    used = set(re.findall(r"name: (LONGHORN_BI_WEBHOOK_\w+)", _text("deployment.yaml")))
    assert used
    assert used <= _envvars(serve)
    required = {p.envvar for p in serve.params if getattr(p, "required", False)}
    assert required <= used
    job = _text("certgen-job.yaml")
    flags = set(re.findall(r"^\s+- (--[a-z-]+)$", job, re.M))
    known = {opt for p in certs.params for opt in p.opts}
    assert flags and flags <= known
    assert {"--secret", "--webhook-configuration", "--out", "--service", "--namespace"} <= flags


def test_tls_modes() -> None:
    job = _text("certgen-job.yaml")
    assert job.startswith('{{- if eq .Values.tls.mode "hook" }}')
    assert "helm.sh/hook: pre-install,pre-upgrade,post-install,post-upgrade" in job
    assert re.search(r"^\s+- certs$", job, re.M)
    cert = _text("certificate.yaml")
    assert cert.startswith('{{- if eq .Values.tls.mode "certManager" }}')
    for name in ("", ".{{ .Release.Namespace }}", ".{{ .Release.Namespace }}.svc"):
        assert f'- {{{{ include "lhbw.fullname" . }}}}{name}\n' in cert


def test_template_actions_are_balanced() -> None:
    for template in TEMPLATES.glob("*.yaml"):
        text = template.read_text()
        assert text.count("{{") == text.count("}}"), template.name
        opened = len(re.findall(r"{{-?\s*(if|with|range)\b", text))
        closed = len(re.findall(r"{{-?\s*end\s*-?}}", text))
        assert opened == closed, template.name


HELM = shutil.which("helm")


@pytest.mark.skipif(HELM is None, reason="helm is not on PATH (not installable on these machines)")
@pytest.mark.parametrize("mode", ["hook", "certManager"])
def test_helm_template_renders(mode: str) -> None:
    assert HELM is not None
    result = subprocess.run(
        [HELM, "template", "lhb", str(CHART), "--namespace", "lhb", "--set", f"tls.mode={mode}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = {d["kind"] for d in docs}
    assert {
        "Deployment",
        "Service",
        "ValidatingWebhookConfiguration",
        "PodDisruptionBudget",
    } <= kinds
    assert ("Job" in kinds) == (mode == "hook")
    assert ("Certificate" in kinds) == (mode == "certManager")
    (vwc,) = [d for d in docs if d["kind"] == "ValidatingWebhookConfiguration"]
    hook = vwc["webhooks"][0]
    assert hook["failurePolicy"] == "Fail" and hook["timeoutSeconds"] == 5
