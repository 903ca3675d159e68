"""Rules of a BackingImage of any source type (restore has its own module)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from longhorn_bi.engine.go_url import GoURLError, parse_request_uri
from longhorn_bi.engine.names import LONGHORN_NAME, MAX_NAME_LENGTH, name_problem
from longhorn_bi.engine.rules.base import (
    BACKING_IMAGE_MANAGER,
    Cel,
    Citation,
    Finding,
    Manifest,
    RuleContext,
    Severity,
    as_text,
    crds,
    manager,
    rule,
)
from longhorn_bi.engine.rules.cel_hosts import cel_is_loopback, is_loopback_host
from longhorn_bi.engine.rules.schema import (
    SOURCE_PARAMETERS,
    SOURCE_TYPES_V16,
    SOURCE_TYPES_V17,
    SYSTEM_SOURCE_PARAMETERS,
    cel_list,
    cel_regex,
    cel_shown,
    source_types,
)

# \Z, not $: `$` also matches before a final newline.
CHECKSUM = re.compile(r"[a-f0-9]{128}\Z")
_HEX = re.compile(r"[A-Fa-f0-9]+\Z")
BI = {"BackingImage"}
PARAMS = ("spec", "sourceParameters")
VALIDATOR = "webhook/resources/backingimage/validator.go"
MUTATOR = "webhook/resources/backingimage/mutator.go"


@rule(
    "LHB101",
    "source-type",
    Severity.ERROR,
    BI,
    "sourceType is one the version supports",
    source=(crds("1.6-1.12"), manager(VALIDATOR, "1.6-1.12")),
    cel=(
        Cel(
            "has(object.spec) && has(object.spec.sourceType)",
            f"'spec.sourceType is missing; set one of {', '.join(SOURCE_TYPES_V17)}'",
            path=("spec",),
        ),
        *(
            Cel(
                "!has(object.spec) || !has(object.spec.sourceType) || object.spec.sourceType in "
                + cel_list(allowed),
                f"'sourceType ' + object.spec.sourceType + ' is not supported by Longhorn "
                f"{versions}; use one of {', '.join(allowed)}'",
                path=("spec", "sourceType"),
                versions=versions,
            )
            for allowed, versions in ((SOURCE_TYPES_V16, "1.6"), (SOURCE_TYPES_V17, "1.7-1.12"))
        ),
    ),
)
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


# {sourceType: [known keys]} as a CEL map literal.
MAX_CEL_LISTED = 16
_KNOWN_PARAMETERS = (
    "{"
    + ", ".join(
        f"'{source}': {cel_list(tuple(sorted(keys | SYSTEM_SOURCE_PARAMETERS)))}"
        for source, keys in sorted(SOURCE_PARAMETERS.items())
    )
    + "}"
)


@rule(
    "LHB102",
    "source-parameters-known",
    Severity.WARNING,
    BI,
    "sourceParameters keys are known",
    source=(manager("k8s/pkg/apis/longhorn/v1beta2/backingimagedatasource.go", "1.6-1.12"),),
    source_types=set(SOURCE_PARAMETERS),
    cel=(
        Cel(
            f"!has(object.spec.sourceParameters) || object.spec.sourceParameters.all(k, k in "
            f"{_KNOWN_PARAMETERS}[object.spec.sourceType])",
            # Listed only when there are few: filter visits every key.
            f"size(object.spec.sourceParameters) > {MAX_CEL_LISTED} ? 'sourceParameters has ' + "
            "string(size(object.spec.sourceParameters)) + ' keys, not all of them parameters of "
            "sourceType ' + object.spec.sourceType + '; Longhorn ignores those' : "
            "'sourceParameters ' + object.spec.sourceParameters.filter(k, !(k in "
            f"{_KNOWN_PARAMETERS}[object.spec.sourceType])).map(k, {cel_shown('k')}).join(', ') + "
            "' are not parameters of sourceType ' + object.spec.sourceType + '; Longhorn ignores "
            "them'",
            path=PARAMS,
        ),
    ),
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


# Trimmed as Longhorn's mutator trims it (and in the cluster the policy sees it trimmed, after
# the mutating webhook). The size tests first bound the cost of the string work: a checksum
# padded past MAX_CEL_CHECKSUM characters is refused, which the Python check would accept.
MAX_CEL_CHECKSUM = 4096
_CHECKSUM_OK = (
    "!has(object.spec) || !has(object.spec.checksum) || object.spec.checksum == '' || "
    f"(size(object.spec.checksum) <= {MAX_CEL_CHECKSUM} && (object.spec.checksum.trim() == '' || "
    "(size(object.spec.checksum.trim()) == 128 && "
    "object.spec.checksum.trim().matches('^[a-f0-9]+$'))))"
)
_CHECKSUM_MESSAGE = (
    "'checksum is not a SHA-512 digest: it has ' + string(size(object.spec.checksum.trim())) + "
    "' characters, and it must be 128 lower-case hex digits'"
)


@rule(
    "LHB103",
    "checksum-format",
    Severity.ERROR,
    BI,
    "checksum is 128 lower-case hex digits",
    source=(manager(MUTATOR, "1.6-1.12"), manager(VALIDATOR, "1.6-1.12")),
    cel=(
        Cel(
            f"{_CHECKSUM_OK} || (has(object.spec.sourceType) && object.spec.sourceType == 'clone')",
            f"{_CHECKSUM_MESSAGE} + ' (sha512sum FILE prints it)'",
            path=("spec", "checksum"),
        ),
        Cel(
            f"{_CHECKSUM_OK} || !(has(object.spec.sourceType) && object.spec.sourceType == 'clone')",
            f"{_CHECKSUM_MESSAGE} + '; Longhorn replaces a clone\\'s checksum, so leave it out'",
            path=("spec", "checksum"),
            severity=Severity.WARNING,
        ),
    ),
)
def check_checksum(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.checksum` is empty or a SHA-512 digest: 128 lower-case hex digits
    (`sha512sum FILE` or `kubectl longhorn-bi checksum FILE` prints it). Longhorn trims
    whitespace around it first. A clone's checksum is replaced by Longhorn (the source's, or
    none when encrypting or decrypting), so there it is only a warning."""
    value = m.spec.get("checksum")
    if not value or not isinstance(value, str) or CHECKSUM.match(value):
        return
    value = value.strip()  # the mutator trims it before the validator looks
    if not value or CHECKSUM.match(value):
        return
    if len(value) == 128 and _HEX.match(value):
        fix = "it has upper-case letters; write it in lower case"
    elif len(value) == 64 and _HEX.match(value):
        fix = "that is a SHA-256 digest (64 digits); Longhorn needs the SHA-512 (sha512sum FILE)"
    elif _HEX.match(value):
        fix = f"it has {len(value)} hex digits, not 128; copy the whole SHA-512 digest"
    else:
        fix = "it has characters other than 0-9 and a-f; copy the digest printed by sha512sum"
    if m.source_type == "clone":
        yield Finding(
            ("spec", "checksum"),
            f"checksum is not a SHA-512 digest ({fix}); Longhorn replaces a clone's checksum, so "
            "leave it out",
            Severity.WARNING,
        )
    else:
        yield Finding(("spec", "checksum"), f"checksum is not a SHA-512 digest: {fix}")


# Past this many characters a download URL is refused by the policy unparsed: it bounds the
# cost of the string work (the Python check has no such bound; no real URL comes near it).
MAX_CEL_URL = 8192
_URL = "object.spec.sourceParameters['url']"
_URL_GIVEN = "has(object.spec.sourceParameters) && 'url' in object.spec.sourceParameters"
# Go's getScheme lower-cases the scheme: this is `scheme in [http, https]` without url(),
# which fails on some scheme-less text that isURL accepts (a '//host' path).
_HTTP = "'^[hH][tT][tT][pP][sS]?:'"
# url() parses with url.Parse too, which fails on a bad escape in a fragment that
# ParseRequestURI leaves alone: the host is read from the text before any '#'.
_HOSTNAME = f"url({_URL}.trim().split('#')[0]).getHostname().lowerAscii()"
_URL_CHECKED = (
    f"size({_URL}) <= {MAX_CEL_URL} && {_URL}.trim() != '' && isURL({_URL}.trim()) && "
    f"{_URL}.trim().matches({_HTTP})"
)


@rule(
    "LHB104",
    "download-url",
    Severity.ERROR,
    BI,
    "a download has an http(s) URL off loopback",
    source=(
        manager(VALIDATOR, "1.6-1.12"),
        Citation(BACKING_IMAGE_MANAGER, "pkg/sync/handler.go", "1.6-1.12"),
    ),
    source_types={"download"},
    cel=(
        Cel(
            _URL_GIVEN,
            "'a download needs sourceParameters.url, the http(s) URL of the image'",
            path=PARAMS,
        ),
        # The URL is not echoed: it may carry credentials (user:password@).
        Cel(
            f"!({_URL_GIVEN}) || ({_URL_CHECKED} && {_HOSTNAME} != '' && "
            f"!{cel_is_loopback(_HOSTNAME)})",
            f"{_URL}.trim() == '' ? 'url is empty; give the http(s) URL of the image' : "
            f"size({_URL}) > {MAX_CEL_URL} ? 'url is over {MAX_CEL_URL} characters' : "
            f"!isURL({_URL}.trim()) ? 'url cannot be parsed as Longhorn parses it (Go\\'s "
            "url.ParseRequestURI); fix the URL' : "
            f"!{_URL}.trim().matches({_HTTP}) || {_HOSTNAME} == '' ? "
            "'url is not an http or https URL with a host' : "
            "'url points at loopback, which is the downloading pod itself; use an address the "
            "cluster can reach'",
            path=(*PARAMS, "url"),
        ),
    ),
)
def check_download_url(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A download BackingImage needs `sourceParameters.url` (Longhorn's validator refuses
    it empty), an http or https URL, parsed as Longhorn's validator parses it (Go's
    url.ParseRequestURI), whose host is not loopback (nor 0.0.0.0 or ::, which reach the
    same host): the validator refuses those from 1.12.1, and before that the download pod
    fails on them (it speaks only HTTP, and loopback is the pod itself)."""
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
        parts = parse_request_uri(url)
    except GoURLError as exc:  # an unclosed '[' in the host, say
        yield Finding((*PARAMS, "url"), f"url {url!r} cannot be parsed ({exc}); fix the URL")
        return
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        yield Finding((*PARAMS, "url"), f"url {url!r} is not an http or https URL with a host")
    elif is_loopback_host(parts.hostname):
        yield Finding(
            (*PARAMS, "url"),
            f"url {url!r} points at loopback, which is the downloading pod itself; use an address "
            "the cluster can reach",
        )


_NO_MIN_COPIES = "!has(object.spec) || !has(object.spec.minNumberOfCopies)"


@rule(
    "LHB105",
    "min-copies",
    Severity.ERROR,
    BI,
    "minNumberOfCopies is at least 1",
    source=(
        manager(VALIDATOR, "1.7-1.12"),
        manager(MUTATOR, "1.7-1.12"),
        manager("types/setting.go", "1.7-1.12"),
    ),
    cel=(
        Cel(
            f"{_NO_MIN_COPIES} || object.spec.minNumberOfCopies >= 0",
            "'minNumberOfCopies is ' + string(object.spec.minNumberOfCopies) + '; set 1 or more'",
            path=("spec", "minNumberOfCopies"),
        ),
        Cel(
            f"{_NO_MIN_COPIES} || object.spec.minNumberOfCopies != 0",
            "'minNumberOfCopies 0 takes the default setting on create but Longhorn refuses it on "
            "an update; leave it out or set 1 or more'",
            path=("spec", "minNumberOfCopies"),
            severity=Severity.WARNING,
        ),
    ),
)
def check_min_copies(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A negative `spec.minNumberOfCopies` is refused. 0 (or none) means the
    default-min-number-of-backing-image-copies setting on CREATE, where Longhorn's mutator
    fills it in; an UPDATE that sets 0 is refused, so 0 is a warning."""
    value = m.spec.get("minNumberOfCopies")
    if not isinstance(value, int) or isinstance(value, bool) or value >= 1:
        return
    if value == 0:
        yield Finding(
            ("spec", "minNumberOfCopies"),
            "minNumberOfCopies 0 takes the default-min-number-of-backing-image-copies setting "
            "when the image is created, but Longhorn refuses it on an update; leave it out or "
            "set 1 or more",
            Severity.WARNING,
        )
    else:
        yield Finding(("spec", "minNumberOfCopies"), f"minNumberOfCopies is {value}; set 1 or more")


ENCRYPTIONS = ("encrypt", "decrypt", "ignore")
EXPORT_TYPES = ("raw", "qcow2")
DATA_ENGINES = ("v1", "v2")
CLONE_SECRET_PARAMETERS = ("secret", "secret-namespace")


def _param(key: str) -> str:
    """CEL: sourceParameters[key] trimmed as Longhorn's mutator trims it, '' when absent."""
    return (
        f"(has(object.spec.sourceParameters) && '{key}' in object.spec.sourceParameters ? "
        f"object.spec.sourceParameters['{key}'].trim() : '')"
    )


_CLONE_SOURCE = _param("backing-image")
_ENCRYPTION = _param("encryption")


@rule(
    "LHB106",
    "clone-parameters",
    Severity.ERROR,
    BI,
    "a clone names its source, encryption and secret",
    source=(
        manager(VALIDATOR, "1.7-1.12"),
        manager(MUTATOR, "1.7-1.12"),
        manager("controller/backing_image_data_source_controller.go", "1.7-1.12"),
    ),
    source_types={"clone"},
    cel=(
        Cel(
            f"{_CLONE_SOURCE} != ''",
            "'a clone needs sourceParameters.backing-image, the image to clone'",
            path=PARAMS,
        ),
        Cel(
            f"{_CLONE_SOURCE} == '' || (size({_CLONE_SOURCE}) <= {MAX_NAME_LENGTH} && "
            f"{_CLONE_SOURCE}.matches({cel_regex(LONGHORN_NAME)}) && (!has(object.metadata.name) || "
            f"{_CLONE_SOURCE} != object.metadata.name))",
            f"'backing-image ' + {cel_shown(_CLONE_SOURCE)} + ' is not the name of another backing image: "
            "2 to 253 lower-case letters, digits, -, _ or ., starting with a letter or digit'",
            path=(*PARAMS, "backing-image"),
        ),
        Cel(
            f"{_ENCRYPTION} in {cel_list(('', *ENCRYPTIONS))}",
            f"'encryption ' + {cel_shown(_ENCRYPTION)} + ' is not one of {', '.join(ENCRYPTIONS)}'",
            path=(*PARAMS, "encryption"),
        ),
        *(
            Cel(
                f"!({_ENCRYPTION} in ['encrypt', 'decrypt']) || {_param(key)} != ''",
                f"'encryption ' + {_ENCRYPTION} + ' needs sourceParameters.{key}: the secret "
                "holding the encryption key and its namespace'",
                path=PARAMS,
            )
            for key in CLONE_SECRET_PARAMETERS
        ),
        Cel(
            f"{_ENCRYPTION} != 'decrypt' || !has(object.spec.secret) || object.spec.secret == ''",
            "'a decrypted clone should have no spec.secret: Longhorn takes a non-empty one to "
            "mean the image is encrypted'",
            path=("spec", "secret"),
            severity=Severity.WARNING,
        ),
    ),
)
def check_clone(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """A clone needs `backing-image` (the source's name). `encryption` is encrypt, decrypt
    or ignore; missing or empty, Longhorn's mutator sets ignore. encrypt and decrypt need
    `sourceParameters.secret` and `secret-namespace` (the key's secret). Longhorn copies that
    secret to spec.secret only when encrypting, and takes a non-empty spec.secret as "this
    image is encrypted": on a decrypt clone it is a warning."""
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
    encryption = params.get("encryption") or "ignore"  # the mutator's default
    if encryption not in ENCRYPTIONS:
        yield Finding(
            (*PARAMS, "encryption"),
            f"encryption {encryption!r} is not one of {', '.join(ENCRYPTIONS)}",
        )
        return
    if encryption == "ignore":
        return
    for key in CLONE_SECRET_PARAMETERS:
        if not params.get(key):
            yield Finding(
                PARAMS,
                f"encryption {encryption} needs sourceParameters.{key}: the secret holding the "
                "encryption key and its namespace",
            )
    if encryption == "decrypt" and as_text(m.spec.get("secret")):
        yield Finding(
            ("spec", "secret"),
            "a decrypted clone should have no spec.secret: Longhorn takes a non-empty one to mean "
            "the image is encrypted; give the key in sourceParameters.secret only",
            Severity.WARNING,
        )


@rule(
    "LHB107",
    "export-parameters",
    Severity.ERROR,
    BI,
    "an export names its volume and format",
    source=(manager(VALIDATOR, "1.6-1.12"), manager(MUTATOR, "1.6-1.12")),
    source_types={"export-from-volume"},
    cel=(
        Cel(
            "has(object.spec.sourceParameters) && 'volume-name' in object.spec.sourceParameters "
            "&& object.spec.sourceParameters['volume-name'].trim() != ''",
            "'export-from-volume needs sourceParameters.volume-name, the volume to export'",
            path=PARAMS,
        ),
        Cel(
            "!has(object.spec.sourceParameters) || !('export-type' in object.spec.sourceParameters)"
            " || object.spec.sourceParameters['export-type'].trim() in "
            + cel_list(("", *EXPORT_TYPES)),
            "'export-type ' + "
            + cel_shown("object.spec.sourceParameters['export-type']")
            + " + ' is not one of raw, "
            "qcow2'",
            path=(*PARAMS, "export-type"),
        ),
    ),
)
def check_export(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """export-from-volume needs `volume-name`; `export-type` is raw or qcow2 (missing or
    empty, Longhorn's mutator sets raw)."""
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


@rule(
    "LHB108",
    "data-engine",
    Severity.ERROR,
    BI,
    "dataEngine is one the version supports",
    source=(crds("1.8-1.12"), manager(VALIDATOR, "1.8-1.12")),
    cel=tuple(
        Cel(
            "!has(object.spec) || !has(object.spec.dataEngine) || object.spec.dataEngine in "
            + cel_list(("", *allowed)),
            f"'dataEngine ' + object.spec.dataEngine + ' is not one of {', '.join(allowed)} in "
            f"Longhorn {versions}'",
            path=("spec", "dataEngine"),
            versions=versions,
        )
        for allowed, versions in ((DATA_ENGINES, "1.8-1.11"), (DATA_ENGINES[:1], "1.12"))
    ),
)
def check_data_engine(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """`spec.dataEngine` (from Longhorn 1.8; pruned before) is v1 (the default) or v2. From
    1.12 Longhorn's validator refuses to create a v2 BackingImage."""
    value = m.spec.get("dataEngine")
    if not isinstance(value, str) or not value or not ctx.version.has_data_engine:
        return
    if value not in DATA_ENGINES:
        yield Finding(("spec", "dataEngine"), f"dataEngine {value!r} is not one of v1, v2")
    elif value == "v2" and ctx.version.rejects_v2_backing_image:
        yield Finding(
            ("spec", "dataEngine"),
            f"Longhorn {ctx.version} does not support v2 backing images; use dataEngine: v1",
        )


@rule(
    "LHB109",
    "immutable-fields",
    Severity.ERROR,
    BI,
    "secret, secretNamespace and dataEngine stay as set",
    source=(manager(VALIDATOR, "1.7-1.12"), manager(MUTATOR, "1.7-1.12")),
    cel=(
        *(
            Cel(
                f"oldObject == null || !has(oldObject.spec) || !has(oldObject.spec.{field}) || "
                f"oldObject.spec.{field} == '' || (has(object.spec) && has(object.spec.{field}) "
                f"&& object.spec.{field} == oldObject.spec.{field})",
                f"'spec.{field} was ' + {cel_shown(f'oldObject.spec.{field}')} + '; Longhorn does not allow "
                "changing it, so keep that value'",
                path=("spec", field),
                versions="1.7-1.12",
                introduced_only=False,
            )
            for field in ("secret", "secretNamespace")
        ),
        Cel(
            "oldObject == null || !has(oldObject.spec) || (has(oldObject.spec.dataEngine) ? "
            "has(object.spec) && has(object.spec.dataEngine) && "
            "object.spec.dataEngine == oldObject.spec.dataEngine : "
            "!(has(object.spec) && has(object.spec.dataEngine)))",
            "'spec.dataEngine changed; Longhorn does not allow changing it, so keep the stored "
            "value'",
            path=("spec", "dataEngine"),
            versions="1.8-1.12",
            introduced_only=False,
        ),
    ),
)
def check_immutable_fields(m: Manifest, ctx: RuleContext) -> Iterator[Finding]:
    """Longhorn refuses an update that changes `spec.secret` or `spec.secretNamespace` once
    set (the image's data is encrypted with that key), or `spec.dataEngine` (1.8+). Checked
    when the stored object is known (the webhook's UPDATE)."""
    previous = ctx.previous
    if previous is None or not ctx.version.has_clone_source:
        return
    before = previous.get("spec")
    if not isinstance(before, dict):
        return
    for field in ("secret", "secretNamespace"):
        old = as_text(before.get(field))
        if old and m.spec.get(field) != old:
            yield Finding(
                ("spec", field),
                f"spec.{field} was {old!r}; Longhorn does not allow changing it, so keep that value",
            )
    if ctx.version.has_data_engine and before.get("dataEngine") != m.spec.get("dataEngine"):
        yield Finding(
            ("spec", "dataEngine"),
            f"spec.dataEngine was {before.get('dataEngine')!r}; Longhorn does not allow changing "
            "it, so keep that value",
        )
