"""Put a certificate bundle in the cluster: the TLS Secret, and the caBundle of the
ValidatingWebhookConfiguration. Used by `certs --secret/--webhook-configuration` in the
chart's hook Job; a CLI, so the sync Kubernetes client is fine here."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization

from longhorn_bi.engine.errors import ClusterError
from longhorn_bi.webhook.certs import CA_FILE, CERT_FILE, KEY_FILE, CertBundle
from longhorn_bi.webhook.kube import load_configuration

# A kept certificate must outlive the next upgrade by a wide margin.
MIN_REMAINING = dt.timedelta(days=30)


def _api_client(kubeconfig: Path | None) -> Any:
    from kubernetes import client

    return client.ApiClient(load_configuration(kubeconfig))


def _usable(data: dict[str, str], dns_name: str) -> CertBundle | None:
    """The bundle in a Secret's data when it is complete, valid for `dns_name`, matched
    and not near expiry; None otherwise."""
    try:
        raw = {k: base64.b64decode(data[k]) for k in (CA_FILE, CERT_FILE, KEY_FILE)}
        cert = x509.load_pem_x509_certificate(raw[CERT_FILE])
        key = serialization.load_pem_private_key(raw[KEY_FILE], password=None)
        ca = x509.load_pem_x509_certificate(raw[CA_FILE])
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        # ca.crt becomes the caBundle: it must be a CA, and the one that issued tls.crt,
        # or the API server could not verify the webhook at all.
        if not ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            return None
        cert.verify_directly_issued_by(ca)
    except (KeyError, ValueError, TypeError, x509.ExtensionNotFound, InvalidSignature):
        return None
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if (
        key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki)
        or dns_name not in names.value.get_values_for_type(x509.DNSName)
        or cert.not_valid_after_utc - dt.datetime.now(dt.UTC) < MIN_REMAINING
    ):
        return None
    return CertBundle(raw[CA_FILE], raw[CERT_FILE], raw[KEY_FILE], b"")


def ensure_secret(
    name: str, namespace: str, bundle: CertBundle, dns_name: str, kubeconfig: Path | None
) -> tuple[CertBundle, bool]:
    """The bundle in Secret `name`: the existing one when usable (False), else `bundle`
    written there (True). Keeping a good Secret keeps the caBundle valid across upgrades."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api: Any = client.CoreV1Api(_api_client(kubeconfig))
    data = {
        CA_FILE: base64.b64encode(bundle.ca_pem).decode(),
        CERT_FILE: base64.b64encode(bundle.cert_pem).decode(),
        KEY_FILE: base64.b64encode(bundle.key_pem).decode(),
    }
    body: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "longhorn-bi-webhook-certs"},
        },
        "type": "kubernetes.io/tls",
        "data": data,
    }
    try:
        try:
            existing = api.read_namespaced_secret(name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise
            api.create_namespaced_secret(namespace, body)
            return bundle, True
        kept = _usable(dict(existing.data or {}), dns_name)
        if kept is not None:
            return kept, False
        body["metadata"]["resourceVersion"] = existing.metadata.resource_version
        api.replace_namespaced_secret(name, namespace, body)
        return bundle, True
    except ApiException as exc:
        raise ClusterError(
            f"--secret {namespace}/{name}: the API server answered {exc.status} {exc.reason}",
            hint="the Job's ServiceAccount needs get and update on this Secret (the chart "
            "creates it empty)",
        ) from exc


def patch_ca_bundle(
    name: str, ca_pem: bytes, kubeconfig: Path | None, failure_policy: str | None = None
) -> int:
    """Set caBundle (and failurePolicy, when given) on every webhook of
    ValidatingWebhookConfiguration `name`; the number patched, 0 when it does not exist yet.

    The chart installs the configuration with `failurePolicy: Ignore` until its caBundle is
    known, so that no request fails on a missing CA; this patch sets both at once."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api: Any = client.AdmissionregistrationV1Api(_api_client(kubeconfig))
    try:
        try:
            # Raw JSON: the client's models reject fields of newer API versions.
            response = api.read_validating_webhook_configuration(name, _preload_content=False)
            current = json.loads(response.data)
        except ApiException as exc:
            if exc.status == 404:
                return 0
            raise
        encoded = base64.b64encode(ca_pem).decode()
        patch: list[dict[str, str]] = []
        for i in range(len(current.get("webhooks") or [])):
            patch.append(
                {"op": "add", "path": f"/webhooks/{i}/clientConfig/caBundle", "value": encoded}
            )
            if failure_policy:
                patch.append(
                    {"op": "add", "path": f"/webhooks/{i}/failurePolicy", "value": failure_policy}
                )
        if patch:
            api.patch_validating_webhook_configuration(name, patch, _preload_content=False)
        return len(current.get("webhooks") or [])
    except ApiException as exc:
        raise ClusterError(
            f"--webhook-configuration {name}: the API server answered {exc.status} {exc.reason}",
            hint="the Job's ServiceAccount needs get and patch on it",
        ) from exc
