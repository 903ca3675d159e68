"""Name and label syntax shared by rules, URL parsing and the backupstore."""

from __future__ import annotations

import functools
import hashlib
import re

# Longhorn's own check for backing image (and backup) names. \Z, not $: Python's `$` also
# matches before a final newline, Go's does not.
LONGHORN_NAME = re.compile(r"[a-z0-9][a-z0-9_.-]+\Z")
MAX_NAME_LENGTH = 253  # a Kubernetes object name (DNS subdomain)
# Longhorn's BackingImage mutator (webhook/resources/backingimage/mutator.go, AutoCorrectName
# with datastore.NameMaximumLength, v1.6.4 .. v1.12.1) lower-cases a longer name and cuts it to
# this many characters with a hash suffix.
MAX_LONGHORN_NAME = 40
# Exactly the names name_problem accepts, in one C call: rules check names on every review.
is_valid_name = re.compile(rf"[a-z0-9][a-z0-9_.-]{{1,{MAX_NAME_LENGTH - 1}}}\Z").match

_LABEL_NAME = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)\Z")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\Z")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
# The patterns themselves, for the rules' CEL forms (rules/schema.py cel_regex).
DNS_SUBDOMAIN, LABEL_NAME, LABEL_VALUE = _DNS_SUBDOMAIN, _LABEL_NAME, _LABEL_VALUE
# The API server's syntax for object names (length apart): see object_name_problem.
is_object_name = _DNS_SUBDOMAIN.match


def name_problem(name: str) -> str | None:
    """Why `name` is not a valid backing image or backup name, or None when it is."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long, over the limit of {MAX_NAME_LENGTH}"
    if not LONGHORN_NAME.match(name):
        return (
            f"{name!r} must be at least 2 characters of lower-case letters, digits, '-', '_' "
            "or '.', starting with a letter or digit"
        )
    return None


def object_name_problem(name: str) -> str | None:
    """Why the API server refuses `name` for a custom resource, or None. It must be a DNS-1123
    subdomain (apiextensions-apiserver's customResourceValidator, NameIsDNSSubdomain), checked
    after mutating admission (so after Longhorn lower-cases a BackingImage name) and before
    validating admission: stricter than Longhorn's own syntax, which allows '_'."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long, over the limit of {MAX_NAME_LENGTH}"
    if not _DNS_SUBDOMAIN.match(name):
        return (
            f"{name!r} is no Kubernetes object name: lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit ('_' is not allowed)"
        )
    return None


def auto_corrected_name(name: str) -> str:
    """The name Longhorn's BackingImage mutator gives `name` (longhorn-manager
    util.AutoCorrectName, 1.6-1.12): lower-cased and, when over 40 characters, cut so that a
    '-' and the first 8 hex digits of the SHA-512 of the original name fit."""
    lowered = name.lower()
    if len(name) <= MAX_LONGHORN_NAME:
        return lowered
    suffix = "-" + hashlib.sha512(name.encode()).hexdigest()[:8]
    return lowered[: MAX_LONGHORN_NAME - len(suffix)].rstrip("-") + suffix


# The names Longhorn can import from a backup target: the intersection of
# - backing-image-manager pkg/util/util.go ValidBackingImageName (v1.6.4 .. v1.12.1): at most
#   64 characters of [a-zA-Z0-9_.-], the check on every backup Longhorn itself makes;
# - longhorn-manager controller/backup_target_controller.go syncBackupBackingImage: v1.6.4 and
#   v1.7.3 create a BackupBackingImage named after the backup (a DNS-1123 subdomain), v1.8.2 ..
#   v1.12.1 name it `<name>-<8 random>` and label it `backing-image=<name>` (a label value: at
#   most 63 characters). The loop returns at the first object it cannot create, so one such
#   backup stops the sync of every backup listed after it.
IMPORTABLE_NAME_LENGTH = 63


def importable_name_problem(name: str) -> str | None:
    """Why Longhorn (v1.6 .. v1.12) could not import a backup named `name`, or None.

    Stricter than `name_problem`: a backup Longhorn can read but never lists must not be
    written, while such backups already on a target must stay readable."""
    problem = name_problem(name)
    if problem:
        return problem
    if len(name) > IMPORTABLE_NAME_LENGTH:
        return (
            f"{name!r} is {len(name)} characters long: Longhorn imports backups named with at "
            f"most {IMPORTABLE_NAME_LENGTH} (the name becomes a label value)"
        )
    if not _DNS_SUBDOMAIN.match(name):
        return (
            f"{name!r} cannot be imported by Longhorn: it becomes a Kubernetes object name, so "
            "use lower-case letters, digits, '-' and '.' only ('_' is refused), starting and "
            "ending with a letter or digit, with a letter or digit on each side of every '.'"
        )
    return None


# A whole label key that is certainly valid, in one match: the common case, checked per
# label on every review. \Z, not $: `$` also matches before a final newline. Keys up to 254
# characters leave the prefix within its 253; anything this rejects gets the full checks.
_PLAIN_LABEL_KEY = re.compile(
    r"(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?\Z"
)
_PLAIN_LABEL_VALUE = re.compile(r"(?:(?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?\Z")
_plain_label_value = _PLAIN_LABEL_VALUE.match


@functools.lru_cache(maxsize=4096)
def _plain_label_key(key: str) -> bool:
    # Memoised: a cluster uses a few label keys (app.kubernetes.io/name...) over and over, and
    # the webhook checks each on every review. Bounded, so odd keys cannot grow it.
    return _PLAIN_LABEL_KEY.match(key) is not None


def plainly_valid_label_key(key: str) -> bool:
    """True when `key` is certainly a valid label key (False: ask label_key_problem)."""
    return len(key) <= 254 and _plain_label_key(key)


def plainly_valid_label(key: str, value: object) -> bool:
    """True when `key` is a valid label key and `value` a valid label value (or not a
    string, which is the field-type rule's business). False means: ask the two functions
    below, which say what is wrong, if anything."""
    # A plain ASCII word (`team`, `storage`) is a valid name and value: no regex for it.
    return (
        len(key) <= 254
        and ((len(key) <= 63 and key.isalnum() and key.isascii()) or _plain_label_key(key))
        and (
            not isinstance(value, str)
            or (
                len(value) <= 63
                and ((value.isalnum() and value.isascii()) or _plain_label_value(value) is not None)
            )
        )
    )


def label_key_problem(key: str) -> str | None:
    """Why `key` is not a valid Kubernetes label key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return f"label key {key!r} has an invalid prefix: it must be a DNS subdomain such as example.com"
    if not name or len(name) > 63 or not _LABEL_NAME.match(name):
        return (
            f"label key {key!r} is invalid: the name part must be 1-63 characters of letters, "
            "digits, '-', '_' or '.', starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why `value` is not a valid Kubernetes label value, or None."""
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return (
            f"label value {value!r} is invalid: at most 63 characters of letters, digits, '-', '_' "
            "or '.', starting and ending with a letter or digit (or empty)"
        )
    return None


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?\Z")


def secret_name_problem(name: str) -> str | None:
    """Why `name` is not a Kubernetes Secret name (a DNS-1123 subdomain), or None."""
    if len(name) > MAX_NAME_LENGTH or not _DNS_SUBDOMAIN.match(name):
        return (
            f"secret name {name!r} is invalid: a DNS subdomain of at most {MAX_NAME_LENGTH} "
            "lower-case letters, digits, '-' and '.'"
        )
    return None


def namespace_problem(namespace: str) -> str | None:
    """Why `namespace` is not a Kubernetes namespace name (a DNS-1123 label), or None."""
    if len(namespace) > 63 or not _DNS_LABEL.match(namespace):
        return (
            f"namespace {namespace!r} is invalid: at most 63 lower-case letters, digits and "
            "'-', starting and ending with a letter or digit"
        )
    return None
