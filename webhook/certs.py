"""A private CA and a serving certificate for the webhook's Service, for installs without
cert-manager (the chart's hook Job runs `longhorn-bi-webhook certs`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from longhorn_bi.engine.errors import InvalidInput

CA_FILE, CERT_FILE, KEY_FILE = "ca.crt", "tls.crt", "tls.key"
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def dns_names(service: str, namespace: str) -> list[str]:
    """The names the API server may use for a Service: it dials `svc.ns.svc`."""
    return [
        service,
        f"{service}.{namespace}",
        f"{service}.{namespace}.svc",
        f"{service}.{namespace}.svc.cluster.local",
    ]


@dataclass(frozen=True)
class CertBundle:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes
    ca_key_pem: bytes


def _check_dns_label(value: str, flag: str) -> None:
    # A Service and a namespace name are RFC 1123 labels.
    if not _DNS_LABEL.fullmatch(value):
        raise InvalidInput(
            f"{flag}: {value!r} is not a valid Service or namespace name",
            hint="use lower-case letters, digits and '-', at most 63 characters",
        )


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_ca(common_name: str, days: int) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_serving_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    names: list[str],
    days: int,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = _key()
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def issue(
    service: str,
    namespace: str,
    *,
    days: int = 3650,
    extra_names: tuple[str, ...] = (),
    ca: tuple[ec.EllipticCurvePrivateKey, x509.Certificate] | None = None,
) -> CertBundle:
    """A CA (new unless given) and a certificate for the Service's DNS names."""
    _check_dns_label(service, "--service")
    _check_dns_label(namespace, "--namespace")
    if days < 1:
        raise InvalidInput("--days: must be 1 or more", hint="the default is 3650 (ten years)")
    ca_key, ca_cert = ca or make_ca(f"{service}.{namespace} webhook CA", days)
    key, cert = make_serving_cert(
        ca_key, ca_cert, [*dns_names(service, namespace), *extra_names], days
    )
    return CertBundle(
        ca_pem=ca_cert.public_bytes(serialization.Encoding.PEM),
        cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        key_pem=_pem_key(key),
        ca_key_pem=_pem_key(ca_key),
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bundle(bundle: CertBundle, out: Path) -> dict[str, Path]:
    """ca.crt, tls.crt and tls.key (0600) in `out`, each replaced atomically.

    The key is written before the certificate, so a reloading server that sees a new
    certificate finds its key already in place. The CA key is not written: nothing needs it
    once the serving certificate is signed, and re-running `certs` makes a new pair.
    """
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"--out: {out} is not a directory", hint="give a directory path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        paths = {"ca": out / CA_FILE, "cert": out / CERT_FILE, "key": out / KEY_FILE}
        _write_atomic(paths["key"], bundle.key_pem, 0o600)
        _write_atomic(paths["cert"], bundle.cert_pem, 0o644)
        _write_atomic(paths["ca"], bundle.ca_pem, 0o644)
    except OSError as exc:
        raise InvalidInput(
            f"--out: cannot write certificates to {out}: {exc.strerror or exc}",
            hint="give a writable directory",
        ) from exc
    return paths
