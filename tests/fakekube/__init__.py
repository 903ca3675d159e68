"""A fake Kubernetes API server for tests (no kube-apiserver can run on the test machines)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tests.support import crd_file, volume_crd_file

from .server import FakeKubeServer
from .store import ApiError, Resource

__all__ = [
    "ApiError",
    "FakeKubeServer",
    "Resource",
    "crd_file",
    "volume_crd_file",
    "write_kubeconfig",
]


def write_kubeconfig(
    path: Path,
    server_url: str,
    *,
    context: str = "fake",
    namespace: str = "longhorn-system",
    token: str | None = None,
    ca_file: Path | None = None,
) -> Path:
    """Write a kubeconfig that kubernetes.config.load_kube_config() and kubectl both accept."""
    cluster: dict[str, str] = {"server": server_url}
    if ca_file is not None:
        cluster["certificate-authority"] = str(ca_file)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": context, "cluster": cluster}],
        "users": [{"name": context, "user": {"token": token} if token else {}}],
        "contexts": [
            {
                "name": context,
                "context": {"cluster": context, "user": context, "namespace": namespace},
            }
        ],
        "current-context": context,
        "preferences": {},
    }
    path = Path(path)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
