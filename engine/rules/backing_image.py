"""Rules of a BackingImage of any source type (restore has its own module)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator
from urllib.parse import urlsplit

from longhorn_bi.engine.names import name_problem
from longhorn_bi.engine.rules.base import Finding, Manifest, RuleContext, Severity, as_text, rule
from longhorn_bi.engine.rules.schema import (
    SOURCE_PARAMETERS,
    SYSTEM_SOURCE_PARAMETERS,
    source_types,
)

# \Z, not $: `$` also matches before a final newline.
CHECKSUM = re.compile(r"[a-f0-9]{128}\Z")
_HEX = re.compile(r"[A-Fa-f0-9]+\Z")
BI = {"BackingImage"}
PARAMS = ("spec", "sourceParameters")


@rule("LHB101", "source-type", Severity.ERROR, BI, "sourceType is one the version supports")
def check_source_type(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.sourceType` is required and must be one of download, upload,
    export-from-volume, restore, and (from Longhorn 1.7) clone."""
    allowed = source_types(ctx.version)
    value = m.spec.get("sourceType")
    if value is None:
        yield Finding(("spec",), f"spec.sourceType is missing; set one of {', '.join(allowed)}")
    elif isinstance(value, str) and value not in allowed:
        extra = " (clone needs Longhorn 1.7 or later)" if value == "clone" else ""
        yield Finding(
            ("spec", "sourceType"),
            f"sourceType {value!r} is not supported by Longhorn {ctx.version}{extra}; use one of "
            f"{', '.join(allowed)}",
        )


@rule(
    "LHB102",
    "source-parameters-known",
    Severity.WARNING,
    BI,
    "sourceParameters keys are known",
    sources=set(SOURCE_PARAMETERS),
)
def check_source_parameter_keys(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn ignores sourceParameters it does not know for the source type: a misspelt
    key (`backup_url`) is silently dropped."""
    source = m.source_type
    if source not in SOURCE_PARAMETERS:
        return
    known = SOURCE_PARAMETERS[source] | SYSTEM_SOURCE_PARAMETERS
    for key in m.raw_source_parameters:
        if key in known or (source == "restore" and key == "backup-target-name"):
            continue
        normalized = str(key).replace("_", "-").lower()
        close = [
            k
            for k in SOURCE_PARAMETERS[source]
            if k.replace("-", "") == normalized.replace("-", "")
        ]
        hint = f"; did you mean {close[0]!r}?" if close else ""
        expected = ", ".join(sorted(SOURCE_PARAMETERS[source])) or "none"
        yield Finding(
            (*PARAMS, key),
            f"{key!r} is not a parameter of sourceType {source} (known: {expected}); Longhorn "
            f"ignores it{hint}",
        )


@rule("LHB103", "checksum-format", Severity.ERROR, BI, "checksum is 128 lower-case hex digits")
def check_checksum(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.checksum` is empty or a SHA-512 digest: 128 lower-case hex digits
    (`sha512sum FILE` or `kubectl longhorn-bi checksum FILE` prints it)."""
    value = m.spec.get("checksum")
    if not value or not isinstance(value, str) or CHECKSUM.match(value):
        return
    if len(value) == 128 and _HEX.match(value):
        fix = "it has upper-case letters; write it in lower case"
    elif len(value) == 64 and _HEX.match(value):
        fix = "that is a SHA-256 digest (64 digits); Longhorn needs the SHA-512 (sha512sum FILE)"
    elif _HEX.match(value):
        fix = f"it has {len(value)} hex digits, not 128; copy the whole SHA-512 digest"
    else:
        fix = "it has characters other than 0-9 and a-f; copy the digest printed by sha512sum"
    yield Finding(("spec", "checksum"), f"checksum is not a SHA-512 digest: {fix}")


def _is_loopback(host: str) -> bool:
    if host.lower() in {"localhost", "localhost.localdomain"} or host.lower().endswith(
        ".localhost"
    ):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@rule(
    "LHB104",
    "download-url",
    Severity.ERROR,
    BI,
    "a download has an http(s) URL off loopback",
    sources={"download"},
)
def check_download_url(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A download BackingImage needs `sourceParameters.url`, an http or https URL that is
    not a loopback address (the pod that downloads is not the machine you typed it on)."""
    if m.source_type != "download":
        return
    url = m.source_parameters.get("url")
    if not url:
        if m.raw_source_parameters.get("url") is None:
            yield Finding(
                PARAMS, "a download needs sourceParameters.url, the http(s) URL of the image"
            )
        else:
            yield Finding((*PARAMS, "url"), "url is empty; give the http(s) URL of the image")
        return
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # an unclosed '[' in the host, say
        yield Finding((*PARAMS, "url"), f"url {url!r} cannot be parsed ({exc}); fix the URL")
        return
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        yield Finding((*PARAMS, "url"), f"url {url!r} is not an http or https URL with a host")
    elif _is_loopback(parts.hostname):
        yield Finding(
            (*PARAMS, "url"),
            f"url {url!r} points at loopback, which is the downloading pod itself; use an address "
            "the cluster can reach",
        )


@rule("LHB105", "min-copies", Severity.ERROR, BI, "minNumberOfCopies is at least 1")
def check_min_copies(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.minNumberOfCopies`, when set, must be 1 or more."""
    value = m.spec.get("minNumberOfCopies")
    if isinstance(value, int) and not isinstance(value, bool) and value < 1:
        yield Finding(("spec", "minNumberOfCopies"), f"minNumberOfCopies is {value}; set 1 or more")


ENCRYPTIONS = ("encrypt", "decrypt", "ignore")


@rule(
    "LHB106",
    "clone-parameters",
    Severity.ERROR,
    BI,
    "a clone names its source and encryption",
    sources={"clone"},
)
def check_clone(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A clone needs `backing-image` (the source's name); `encryption` is encrypt, decrypt or
    ignore (the default), and encrypt or decrypt need `spec.secret` and `spec.secretNamespace`."""
    if m.source_type != "clone":
        return
    params = m.source_parameters
    source = params.get("backing-image")
    if not source:
        yield Finding(PARAMS, "a clone needs sourceParameters.backing-image, the image to clone")
    else:
        problem = name_problem(source)
        if problem:
            yield Finding((*PARAMS, "backing-image"), f"backing-image {problem}")
        elif source == m.name:
            yield Finding((*PARAMS, "backing-image"), "a backing image cannot clone itself")
    encryption = params.get("encryption", "ignore") or "ignore"
    if encryption not in ENCRYPTIONS:
        yield Finding(
            (*PARAMS, "encryption"),
            f"encryption {encryption!r} is not one of {', '.join(ENCRYPTIONS)}",
        )
    elif encryption != "ignore":
        for field in ("secret", "secretNamespace"):
            if not as_text(m.spec.get(field)):
                yield Finding(
                    ("spec",),
                    f"encryption {encryption} needs spec.{field}: the secret holding the encryption key",
                )


EXPORT_TYPES = ("raw", "qcow2")


@rule(
    "LHB107",
    "export-parameters",
    Severity.ERROR,
    BI,
    "an export names its volume and format",
    sources={"export-from-volume"},
)
def check_export(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """export-from-volume needs `volume-name`; `export-type` is raw (the default) or qcow2."""
    if m.source_type != "export-from-volume":
        return
    params = m.source_parameters
    if not params.get("volume-name"):
        yield Finding(
            PARAMS, "export-from-volume needs sourceParameters.volume-name, the volume to export"
        )
    export_type = params.get("export-type")
    if export_type and export_type not in EXPORT_TYPES:
        yield Finding(
            (*PARAMS, "export-type"), f"export-type {export_type!r} is not one of raw, qcow2"
        )
