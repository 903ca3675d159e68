"""`longhorn-bi-webhook certs`: the CA and serving certificate, and the hook Job's cluster
side (TLS Secret, caBundle) against the fake API server."""

from __future__ import annotations

import base64
import datetime as dt
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from longhorn_bi.webhook.cli import cli
from tests.fakekube import FakeKubeServer
from tests.fakekube.store import Resource
from tests.webhook.conftest import make_certs

SVC, NS = "longhorn-bi-webhook", "longhorn-system"
VWC = "longhorn-bi-webhook-longhorn-system"


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def _cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_the_serving_certificate_is_signed_by_the_ca_for_the_service_names(tmp_path: Path) -> None:
    out = make_certs(tmp_path / "certs")
    ca, cert = _cert(out / "ca.crt"), _cert(out / "tls.crt")
    cert.verify_directly_issued_by(ca)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [
        SVC,
        f"{SVC}.{NS}",
        f"{SVC}.{NS}.svc",
        f"{SVC}.{NS}.svc.cluster.local",
        "localhost",
    ]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert stat.S_IMODE((out / "tls.key").stat().st_mode) == 0o600
    assert cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=3600)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "Bad_Name", "--namespace", NS], "--service: 'Bad_Name' is not a valid"),
        (["--service", SVC, "--namespace", "-x"], "--namespace: '-x' is not a valid"),
        (["--service", SVC, "--namespace", NS, "--days", "0"], "--days: must be 1 or more"),
    ],
)
def test_bad_input_is_named_and_writes_nothing(
    tmp_path: Path, args: list[str], message: str
) -> None:
    from longhorn_bi.webhook.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["certs", *args, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert not (tmp_path / "out").exists()
    result = _run("certs", *args, "--out", str(tmp_path / "out"))
    assert message in str(result.exception)


def test_out_must_be_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from longhorn_bi.webhook.cli import main

    target = tmp_path / "file"
    target.write_text("keep me")
    with pytest.raises(SystemExit) as exit_info:
        main(["certs", "--service", SVC, "--namespace", NS, "--out", str(target)])
    assert exit_info.value.code == 2
    assert "--out" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def _secret(fake: FakeKubeServer) -> dict[str, bytes]:
    obj = fake.get("secrets", NS, f"{SVC}-tls")
    assert obj is not None
    assert obj["type"] == "kubernetes.io/tls"
    return {k: base64.b64decode(v) for k, v in obj["data"].items()}


def _register_webhook_configurations(fake: FakeKubeServer) -> None:
    fake.store.register(
        Resource(
            "admissionregistration.k8s.io",
            ("v1",),
            "validatingwebhookconfigurations",
            "ValidatingWebhookConfiguration",
            namespaced=False,
            status=False,
            custom=False,
            singular="validatingwebhookconfiguration",
        )
    )


def test_hook_job_flow_secret_then_ca_bundle(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path, tmp_path: Path
) -> None:
    _register_webhook_configurations(fake_kube)
    common = ["certs", "--service", SVC, "--namespace", NS, "--kubeconfig", str(fake_kubeconfig)]
    common += ["--secret", f"{SVC}-tls", "--webhook-configuration", VWC]

    # pre-install: no configuration yet; the Secret is created.
    first = _run(*common, "--out", str(tmp_path / "pre"))
    assert first.exit_code == 0, first.output
    assert f"wrote Secret {NS}/{SVC}-tls" in first.output
    assert "does not exist yet" in first.output
    stored = _secret(fake_kube)
    assert stored["ca.crt"] == (tmp_path / "pre" / "ca.crt").read_bytes()
    assert stored["tls.key"] == (tmp_path / "pre" / "tls.key").read_bytes()

    # post-install: the chart created the configuration; the same CA goes into it.
    fake_kube.put(
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": VWC},
            "webhooks": [
                {
                    "name": "backing-images.longhorn-bi.io",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "clientConfig": {"service": {"name": SVC, "namespace": NS}},
                }
            ],
        }
    )
    second = _run(*common, "--out", str(tmp_path / "post"), "--failure-policy", "Fail")
    assert second.exit_code == 0, second.output
    assert "kept the valid Secret" in second.output
    assert "set the caBundle of 1 webhook(s)" in second.output
    assert (tmp_path / "post" / "ca.crt").read_bytes() == stored["ca.crt"]
    vwc = fake_kube.get("validatingwebhookconfigurations", "", VWC)
    assert vwc is not None
    bundle = vwc["webhooks"][0]["clientConfig"]["caBundle"]
    assert base64.b64decode(bundle) == stored["ca.crt"]
    # Installed with Ignore until the CA is known; the policy comes with the caBundle.
    assert vwc["webhooks"][0]["failurePolicy"] == "Fail"


@pytest.mark.parametrize("wrong_ca", ["another CA", "the serving certificate"])
def test_a_secret_whose_ca_did_not_issue_its_certificate_is_replaced(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path, tmp_path: Path, wrong_ca: str
) -> None:
    good = make_certs(tmp_path / "good")
    other = make_certs(tmp_path / "other")
    ca = other / "ca.crt" if wrong_ca == "another CA" else good / "tls.crt"
    data = {"ca.crt": ca, "tls.crt": good / "tls.crt", "tls.key": good / "tls.key"}
    fake_kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{SVC}-tls", "namespace": NS},
            "type": "kubernetes.io/tls",
            "data": {k: base64.b64encode(p.read_bytes()).decode() for k, p in data.items()},
        }
    )
    common = ["certs", "--service", SVC, "--namespace", NS, "--out", str(tmp_path / "o")]
    result = _run(*common, "--kubeconfig", str(fake_kubeconfig), "--secret", f"{SVC}-tls")
    assert result.exit_code == 0, result.output
    assert "wrote Secret" in result.output
    stored = _secret(fake_kube)
    _cert(tmp_path / "o" / "tls.crt").verify_directly_issued_by(
        x509.load_pem_x509_certificate(stored["ca.crt"])
    )


def test_a_broken_secret_is_replaced(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path, tmp_path: Path
) -> None:
    fake_kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": f"{SVC}-tls", "namespace": NS},
            "type": "kubernetes.io/tls",
            "data": {"tls.crt": base64.b64encode(b"junk").decode()},
        }
    )
    result = _run(
        "certs",
        "--service",
        SVC,
        "--namespace",
        NS,
        "--out",
        str(tmp_path / "o"),
        "--kubeconfig",
        str(fake_kubeconfig),
        "--secret",
        f"{SVC}-tls",
    )
    assert result.exit_code == 0, result.output
    assert "wrote Secret" in result.output
    assert _secret(fake_kube)["tls.crt"] == (tmp_path / "o" / "tls.crt").read_bytes()


def test_forbidden_secret_is_a_clear_error(
    fake_kube: FakeKubeServer, fake_kubeconfig: Path, tmp_path: Path
) -> None:
    from longhorn_bi.webhook.cli import main

    fake_kube.forbid("get", "secrets")
    with pytest.raises(SystemExit) as exit_info:
        main(
            [
                "certs",
                "--service",
                SVC,
                "--namespace",
                NS,
                "--out",
                str(tmp_path / "o"),
                "--kubeconfig",
                str(fake_kubeconfig),
                "--secret",
                f"{SVC}-tls",
            ]
        )
    assert exit_info.value.code == 1
    assert not (tmp_path / "o").exists()
