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
        "Secret",
        "NetworkPolicy",
        "CronJob",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    }


def test_webhook_configuration() -> None:
    text = _text("validatingwebhookconfiguration.yaml")
    assert 'admissionReviewVersions: ["v1"]' in text
    assert "sideEffects: None" in text
    assert "timeoutSeconds: {{ .Values.webhook.timeoutSeconds }}" in text
    assert "failurePolicy: {{ .Values.webhook.failurePolicy }}" in text
    # Until the hook Job has set the caBundle, Ignore: no request fails on a missing CA.
    assert "failurePolicy: Ignore" in text
    assert 'lookup "v1" "Secret" .Release.Namespace (include "lhbw.tlsSecret" .)' in text
    assert "caBundle: {{ . }}" in text
    # v1beta2 only; the API server converts other served versions (Equivalent).
    assert 'apiVersions: ["v1beta2"]' in text
    assert "matchPolicy: Equivalent" in text
    # Longhorn's accounts skip the webhook where matchConditions are GA.
    assert 'semverCompare ">=1.30-0" .Capabilities.KubeVersion.Version' in text
    assert "request.userInfo.username in [" in text

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
    assert verbs == ['["get", "list", "watch"]', '["get", "list", "watch"]', '["get"]']
    assert re.findall(r"resources: (\[.*\])", text) == [
        '["backingimages", "backupbackingimages", "backuptargets", "volumes"]',
        '["settings"]',
        '["customresourcedefinitions"]',
    ]
    # Of the settings only the one the rules read (the cache asks for it by name).
    from longhorn_bi.engine.facts import BACKUP_TARGET_SETTING

    assert f'resourceNames: ["{BACKUP_TARGET_SETTING}"]' in text
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
        "defaultMode: 0440",
        "LONGHORN_BI_WEBHOOK_EXEMPT_ACCOUNTS",
        "LONGHORN_BI_WEBHOOK_MAX_CONNECTIONS",
    ):
        assert needle in text, needle
    # Scraping annotations only when metrics are on.
    assert text.index("{{- if .Values.metrics.enabled }}") < text.index("prometheus.io/scrape")
    pdb = _text("pdb.yaml")
    assert "minAvailable: {{ .Values.podDisruptionBudget.minAvailable }}" in pdb
    assert _after_mode_guard(pdb).startswith("{{- if gt (int .Values.replicaCount) 1 }}")


def test_plain_http_is_published_only_for_scraping() -> None:
    service = _text("service.yaml")
    assert service.index("{{- if .Values.metrics.enabled }}") < service.index("name: metrics")
    policy = _text("networkpolicy.yaml")
    assert _after_mode_guard(policy).startswith("{{- if .Values.networkPolicy.enabled }}")
    assert "port: {{ .Values.webhook.port }}" in policy
    assert "toYaml .Values.networkPolicy.metricsFrom" in policy
    assert _values()["networkPolicy"]["metricsFrom"]


def test_the_memory_limit_covers_the_measured_peak() -> None:
    # benchmarks/bench_hostile.py: 137 MiB at peak under 1,000 hostile connections and the
    # largest objects; the limit leaves room above it.
    limit = _values()["resources"]["limits"]["memory"]
    assert limit.endswith("Mi") and int(limit[:-2]) >= 137 * 1.3


def test_the_hook_job_needs_no_create_and_cleans_up() -> None:
    job = _text("certgen-job.yaml")
    assert '"create"' not in job
    # Helm makes the empty Secret once, before the Job, and keeps it.
    assert "kind: Secret" in job and "helm.sh/hook: pre-install\n" in job
    assert "helm.sh/resource-policy: keep" in job
    # The ServiceAccount and its four RBAC objects go on failure too.
    assert job.count("before-hook-creation,hook-succeeded,hook-failed") == 5
    assert "activeDeadlineSeconds" in job and "ttlSecondsAfterFinished" in job


def test_cert_manager_serving_certificate_comes_from_a_ca() -> None:
    cert = _text("certificate.yaml")
    assert "isCA: true" in cert
    assert "ca:\n    secretName: {{ $fullname }}-ca" in cert
    serving = cert[cert.rindex("kind: Certificate") :]
    assert "isCA" not in serving and "name: {{ $fullname }}-ca" in serving


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
    assert _after_mode_guard(job).startswith('{{- if eq .Values.tls.mode "hook" }}')
    assert "helm.sh/hook: pre-install,pre-upgrade,post-install,post-upgrade" in job
    assert re.search(r"^\s+- certs$", job, re.M)
    cert = _text("certificate.yaml")
    assert _after_mode_guard(cert).startswith('{{- if eq .Values.tls.mode "certManager" }}')
    for name in ("", ".{{ .Release.Namespace }}", ".{{ .Release.Namespace }}.svc"):
        assert f"- {{{{ $fullname }}}}{name}\n" in cert


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
        [
            HELM,
            "template",
            "lhb",
            str(CHART),
            "--namespace",
            "lhb",
            "--set",
            f"tls.mode={mode}",
            "--kube-version",
            "1.30.0",
        ],
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
    # hook mode, no Secret yet (as on a first install): Ignore until the Job sets the CA.
    assert hook["failurePolicy"] == ("Ignore" if mode == "hook" else "Fail")
    assert hook["timeoutSeconds"] == 5
    assert hook["rules"][0]["apiVersions"] == ["v1beta2"]
    (condition,) = hook["matchConditions"]
    assert (
        "system:serviceaccount:longhorn-system:longhorn-service-account"
        in (condition["expression"])
    )


def test_verify_cronjob_is_an_indexed_job_of_the_plugin_with_narrow_rbac() -> None:
    from longhorn_bi.plugin.verify import verify

    values = _values()
    assert values["verify"]["enabled"] is False  # optional
    jsonschema.validate(values, _schema())
    bad = copy.deepcopy(values)
    bad["verify"]["sample"] = 0
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, _schema())
    cron = _text("verify-cronjob.yaml")
    assert cron.startswith("{{- if .Values.verify.enabled }}")
    for field in ("completionMode: Indexed", "backoffLimitPerIndex:", "restartPolicy: Never"):
        assert field in cron
    flags = set(re.findall(r"^\s+- (--[a-z-]+)$", cron, re.M))
    known = {opt for p in verify.params for opt in p.opts}
    assert flags and flags <= known
    assert {"--all", "--shards", "--sample", "--textfile"} <= flags
    rbac = _text("verify-rbac.yaml")
    assert "delete" not in rbac and "*" not in rbac
    assert 'resources: ["secrets"]\n    resourceNames:' in rbac


def test_match_condition_renders_as_yaml_and_cel_strings() -> None:
    """The exempt accounts go into a single-quoted YAML scalar: each must be a double-quoted
    CEL string (Go's %q), or the rendered manifest is no YAML at all."""
    helpers = _text("_helpers.tpl")
    assert '(printf "%q" .)' in helpers
    assert '(printf "%q" (printf "system:serviceaccount:%s:%s" $ns .))' in helpers
    line = next(
        row
        for row in _text("validatingwebhookconfiguration.yaml").splitlines()
        if "expression:" in row
    )
    accounts = ["longhorn-service-account", "system:serviceaccount:other:sa"]
    quoted = ", ".join(
        json.dumps(a if a.startswith("system:") else f"system:serviceaccount:longhorn-system:{a}")
        for a in accounts
    )
    rendered = line.replace('{{ include "lhbw.exemptUsernames" . }}', quoted)
    expression = yaml.safe_load(rendered.strip())["expression"]
    assert expression == (
        '!(request.userInfo.username in ["system:serviceaccount:longhorn-system:'
        'longhorn-service-account", "system:serviceaccount:other:sa"])'
    )


WEBHOOK_TEMPLATES = (
    "certgen-job.yaml",
    "certificate.yaml",
    "deployment.yaml",
    "networkpolicy.yaml",
    "pdb.yaml",
    "rbac.yaml",
    "service.yaml",
    "serviceaccount.yaml",
    "validatingwebhookconfiguration.yaml",
)
MODE_GUARD = '{{- if ne .Values.mode "policy" }}'


def _after_mode_guard(text: str) -> str:
    """A webhook template's body inside its `mode` guard (its first two lines)."""
    comment, guard, body = text.split("\n", 2)
    assert comment.startswith("{{- /*") and guard == MODE_GUARD
    return body


def test_policy_mode_installs_no_webhook_and_both_mode_skips_the_policy_rules() -> None:
    for name in WEBHOOK_TEMPLATES:
        text = _text(name)
        _after_mode_guard(text)
        assert text.rstrip("\n").endswith("{{- end }}"), name
    deployment = _text("deployment.yaml")
    both = deployment.index('{{- if eq .Values.mode "both" }}')
    assert "LONGHORN_BI_WEBHOOK_POLICY_ENFORCED" in deployment[both : both + 300]
    policy = _text("validatingadmissionpolicy.yaml")
    assert "policy" in policy and MODE_GUARD not in policy
