"""The client configuration of a verify worker in its pod: the service account's token and CA.

The kubelet mounts them at SERVICE_ACCOUNT_DIR and sets KUBERNETES_SERVICE_HOST/PORT; the
folder can be moved with LONGHORN_BI_SERVICE_ACCOUNT_DIR (a custom projected volume, and
the tests, which serve the fake API server over TLS with a CA of their own).

The kubernetes client's InClusterConfigLoader reads the files (it takes their names); its
token refresh hook re-reads the token file once a minute, by a private period. A bound
service account token is rotated by the kubelet (an atomic swap of the projected volume's
files), so the hook here re-reads the file whenever it changed instead: a stat per request,
and a rotated token is used at once.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from longhorn_bi.engine.errors import ClusterError

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
DIR_ENV = "LONGHORN_BI_SERVICE_ACCOUNT_DIR"
HOST_ENV, PORT_ENV = "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"


@dataclass(frozen=True)
class ServiceAccount:
    """Where a pod's service account credentials are mounted."""

    directory: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ServiceAccount:
        return cls(Path(environ.get(DIR_ENV) or SERVICE_ACCOUNT_DIR))

    @property
    def token_file(self) -> Path:
        return self.directory / "token"

    @property
    def ca_file(self) -> Path:
        return self.directory / "ca.crt"


def in_pod(account: ServiceAccount | None = None, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this runs in a pod with a service account token (a verify worker)."""
    account = account or ServiceAccount.from_env(environ)
    return bool(environ.get(HOST_ENV)) and account.token_file.is_file()


class _TokenFile:
    """Re-reads the token file when it changed (the kubelet rotates bound tokens)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._seen: tuple[int, int, int] | None = None

    def refresh(self, configuration: Any) -> None:
        try:
            info = self.path.stat()
            seen = (info.st_ino, info.st_mtime_ns, info.st_size)
            if seen == self._seen:
                return
            token = self.path.read_text().strip()
        except OSError:
            return  # mid-swap: keep the last token; the next request reads again
        if token:
            configuration.api_key["BearerToken"] = f"Bearer {token}"
            self._seen = seen


def pod_configuration(
    account: ServiceAccount | None = None, environ: Mapping[str, str] = os.environ
) -> Any:
    """A kubernetes Configuration for the pod's service account (host, CA, bearer token)."""
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    account = account or ServiceAccount.from_env(environ)
    configuration: Any = Configuration()
    loader_class: Any = InClusterConfigLoader  # untyped in the client
    loader = loader_class(
        token_filename=str(account.token_file),
        cert_filename=str(account.ca_file),
        try_refresh_token=False,
        environ=environ,
    )
    try:
        loader.load_and_set(configuration)
    except ConfigException as exc:
        raise ClusterError(
            f"cannot use the pod's service account in {account.directory}: {exc}",
            hint=f"run in a pod with a service account token mounted (automountServiceAccount"
            f"Token), with {HOST_ENV} and {PORT_ENV} set; or give --kubeconfig",
        ) from None
    except OSError as exc:
        raise ClusterError(
            f"cannot read the pod's service account in {account.directory}: {exc}"
        ) from None
    configuration.refresh_api_key_hook = _TokenFile(account.token_file).refresh
    return configuration
