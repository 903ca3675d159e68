"""End-to-end tests against a real cluster (kind): opt-in, never autouse.

    LONGHORN_BI_E2E_KUBECONFIG=~/.kube/config make e2e

Run them on a scratch cluster without Longhorn: Longhorn's CRDs from tests/data/longhorn/
are installed when missing (and removed afterwards), and every object lives in a fresh
namespace that is deleted at the end (or in LONGHORN_BI_E2E_NAMESPACE, an existing one that
is kept, for users who may not create namespaces). No Longhorn controller runs, so the tests write the
status a controller would write, with kubectl.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import VENV_BIN, crd_file

ENV_VAR = "LONGHORN_BI_E2E_KUBECONFIG"
NAMESPACE_VAR = "LONGHORN_BI_E2E_NAMESPACE"
CRD = "backupbackingimages.longhorn.io"


class RealCluster:
    def __init__(self, kubeconfig: Path, namespace: str) -> None:
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.env = {
            **os.environ,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
            "KUBECONFIG": str(kubeconfig),
        }

    def kubectl(
        self, *args: str, stdin: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["kubectl", *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=110,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr}")
        return result

    def plugin(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`kubectl longhorn-bi ...` through the real kubectl, in the test namespace."""
        return self.kubectl("longhorn-bi", *args, "-n", self.namespace, check=False)

    def set_status(self, resource: str, name: str, status: str) -> None:
        self.kubectl(
            "patch", resource, name, "-n", self.namespace, "--subresource=status",
            "--type=merge", "-p", f'{{"status": {status}}}',
        )  # fmt: skip


@pytest.fixture(scope="session")
def e2e_kubeconfig() -> Path:
    value = os.environ.get(ENV_VAR)
    if not value:
        pytest.skip(
            f"no cluster given: set {ENV_VAR}=PATH (e.g. {ENV_VAR}=~/.kube/config make e2e)"
        )
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    path = Path(value).expanduser()
    if not path.is_file():
        pytest.fail(f"{ENV_VAR}={value}: no such file")
    return path


@pytest.fixture(scope="session")
def real_cluster(e2e_kubeconfig: Path) -> Iterator[RealCluster]:
    given = os.environ.get(NAMESPACE_VAR)
    namespace = given or f"longhorn-bi-e2e-{uuid.uuid4().hex[:8]}"
    cluster = RealCluster(e2e_kubeconfig, namespace)
    created_crds = cluster.kubectl("get", "crd", CRD, check=False).returncode != 0
    crds = crd_file("1.12")
    if created_crds:
        cluster.kubectl("apply", "--server-side", "-f", str(crds))
        cluster.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(crds))
    if not given:
        cluster.kubectl("create", "namespace", namespace)
    try:
        yield cluster
    finally:
        if not given:
            cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
        if created_crds:
            cluster.kubectl("delete", "-f", str(crds), "--wait=false", check=False)
