"""The generated ValidatingAdmissionPolicies on a real cluster (Kubernetes 1.30+): one denial
and one warning, by the API server itself, with no webhook installed."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import yaml

from tests.e2e.conftest import RealCluster

CHECKSUM = "3f" * 64


def _image(name: str, **spec: object) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "BackingImage",
            "metadata": {"name": name},
            "spec": {
                "sourceType": "download",
                "sourceParameters": {"url": "https://example.com/parrot.raw"},
                "checksum": CHECKSUM,
                **spec,
            },
        }
    )


@pytest.fixture(scope="module")
def policy(real_cluster: RealCluster) -> Iterator[RealCluster]:
    version = json.loads(real_cluster.kubectl("version", "-o", "json").stdout)["serverVersion"]
    if (int(version["major"]), int(version["minor"].rstrip("+"))) < (1, 30):
        pytest.skip(f"ValidatingAdmissionPolicy v1 needs Kubernetes 1.30+, not {version}")
    printed = real_cluster.plugin("policy", "--longhorn-version", "1.12")
    assert printed.returncode == 0, printed.stderr
    real_cluster.kubectl("apply", "-f", "-", stdin=printed.stdout)
    try:
        # The API server loads a new policy within seconds: wait until it denies (a server
        # dry run), then the test itself asserts on a real request.
        bad = _image("e2e-probe", checksum="ABC")
        for _ in range(60):
            probe = real_cluster.kubectl(
                "create", "--dry-run=server", "-n", real_cluster.namespace, "-f", "-",
                stdin=bad, check=False,
            )  # fmt: skip
            if probe.returncode != 0:
                break
            time.sleep(1)
        yield real_cluster
    finally:
        real_cluster.kubectl("delete", "-f", "-", stdin=printed.stdout, check=False)


def test_the_api_server_denies_an_error(policy: RealCluster) -> None:
    result = policy.kubectl(
        "create", "-n", policy.namespace, "-f", "-",
        stdin=_image("e2e-bad-checksum", checksum="ABC"), check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "[LHB103] spec.checksum" in result.stderr
    assert "ValidatingAdmissionPolicy" in result.stderr


def test_the_api_server_warns_of_a_warning(policy: RealCluster) -> None:
    result = policy.kubectl(
        "create",
        "-n",
        policy.namespace,
        "-f",
        "-",
        stdin=_image("e2e-min-copies-zero", minNumberOfCopies=0),
    )
    assert "Warning:" in result.stderr and "[LHB105] spec.minNumberOfCopies" in result.stderr
    policy.kubectl("delete", "backingimage", "e2e-min-copies-zero", "-n", policy.namespace)


def test_the_api_server_parses_a_download_url_with_its_url_library(policy: RealCluster) -> None:
    """LHB104 calls Kubernetes' isURL() and url(): the real library finds the loopback host."""
    result = policy.kubectl(
        "create", "--dry-run=server", "-n", policy.namespace, "-f", "-",
        stdin=_image("e2e-loopback", sourceParameters={"url": "http://[::1]:8000/x.raw"}),
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "[LHB104] spec.sourceParameters.url: url points at loopback" in result.stderr
