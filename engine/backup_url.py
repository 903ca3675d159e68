"""Backup target URLs and backing-image backup URLs, parsed and formatted as Longhorn does.

A target is one of (the drivers' URL parsing in longhorn/backupstore s3/, nfs/, cifs/, azblob/,
vfs/ as longhorn/backing-image-manager v1.6.4 .. v1.12.1 vendor them)::

    s3://bucket@region/path/      s3://bucket/path/ (region from AWS_REGION)
    nfs://host:/export[?nfsOptions=...]
    cifs://host/share/path
    azblob://container@core.windows.net/path/
    vfs:///absolute/path          (a local directory)

and a backing image backup URL is the target plus ``?backingImage=<name>`` (``&`` when the
target already has a query). Longhorn's own decoder drops every query parameter; ours keeps
the target's own (``nfsOptions``) so that a decoded URL round-trips.
"""

from __future__ import annotations

import functools
import posixpath
import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from longhorn_bi.engine.errors import InvalidBackupURL
from longhorn_bi.engine.names import MAX_NAME_LENGTH, name_problem
from longhorn_bi.engine.text_redaction import redact_urls

SCHEMES = ("s3", "nfs", "cifs", "azblob", "vfs")
BACKING_IMAGE_PARAM = "backingImage"


@dataclass(frozen=True)
class BackupTarget:
    """A parsed backup target URL. `url` is kept exactly as given."""

    url: str
    scheme: str
    host: str  # s3: bucket; azblob: container; nfs/cifs: server; vfs: ""
    region: str  # s3 region or azblob endpoint suffix; "" when not given
    path: str  # path inside the store (s3 key prefix, nfs export, vfs directory)
    query: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        return self.url

    @functools.cached_property
    def canonical(self) -> str:
        """A form that compares equal for the same store: lower-case scheme, no trailing '/'.

        Cached: parsed targets are themselves cached, and rules compare them per review."""
        path = (s3_key_prefix(self.path) if self.scheme == "s3" else self.path.rstrip("/")) or "/"
        path = path if path.startswith("/") else "/" + path
        query = "?" + urlencode(sorted(self.query)) if self.query else ""
        return f"{self.scheme}://{self.host}@{self.region}{path}{query}"

    def same_store(self, other: BackupTarget) -> bool:
        return self.canonical == other.canonical


@dataclass(frozen=True)
class BackingImageBackupURL:
    """``<target>?backingImage=<name>``: where one backing image's backup lives."""

    target: BackupTarget
    backing_image: str

    def __str__(self) -> str:
        return format_backup_url(self.target, self.backing_image)


def s3_key_prefix(path: str) -> str:
    """The key prefix of an S3 target path, as Longhorn's S3 driver builds keys
    (longhorn/backupstore s3/s3.go, vendored by backing-image-manager v1.6.4 .. v1.12.1):
    leading '/' trimmed, then filepath.Join, which cleans the path (`a//b/` is `a/b`)."""
    trimmed = path.lstrip("/")
    return posixpath.normpath(trimmed) if trimmed else ""


def _fail(url: str, problem: str, hint: str | None = None) -> InvalidBackupURL:
    return InvalidBackupURL(f"backup URL {_redact(url)!r} {problem}", hint=hint)


def _redact(url: str) -> str:
    """Never echo credentials that someone pasted into a URL (user:password@host); works on
    any string (urlsplit raises on some, e.g. an unclosed '[')."""
    return redact_urls(url)


# NUL, the other control characters, space and DEL.
_BAD_CHAR = re.compile(r"[\x00-\x20\x7f]")
# `<target>?backingImage=<valid name>`: no NUL, control or space character (as _check_chars),
# and a name is_valid_name accepts (no '&', '%' or '+', so parse_qsl would read it as is).
_PLAIN_BACKUP_URL = re.compile(
    rf"([^\x00-\x20\x7f?]+)\?{BACKING_IMAGE_PARAM}=([a-z0-9][a-z0-9_.-]{{1,{MAX_NAME_LENGTH - 1}}})\Z"
).match


def _check_chars(url: str) -> None:
    if _BAD_CHAR.search(url):
        raise _fail(url.replace("\x00", "\\0"), "contains a NUL, control or space character")


def _check_path(url: str, path: str) -> None:
    segments = path.split("/")
    if ".." in segments or "." in segments:
        raise _fail(url, "has a '.' or '..' path segment", "give the store's path without them")


def parse_target(url: str) -> BackupTarget:
    """Parse a backup target URL, or raise InvalidBackupURL saying what is wrong."""
    # The webhook parses the same few target URLs on every review: memoised (results are
    # frozen; errors are not cached).
    return _parse_target_cached(url) if isinstance(url, str) else _parse_target(url)


def _parse_target(url: str) -> BackupTarget:
    if not isinstance(url, str) or not url.strip():
        raise InvalidBackupURL("backup target URL is empty", hint="e.g. s3://bucket@us-east-1/")
    _check_chars(url)
    scheme, sep, _ = url.partition("://")
    # Go's url.Parse lower-cases the scheme, and every Longhorn reader of these URLs goes
    # through it (backupstore driver.go GetBackupStoreDriver, longhorn-manager's BackingImage
    # mutator getBackupTargetURLAndBackingImageName, v1.6.4-v1.12.1): S3:// is s3://.
    scheme = scheme.lower()
    if not sep:
        raise _fail(
            url, "has no scheme", f"start it with one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    if scheme not in SCHEMES:
        raise _fail(
            url,
            f"has unsupported scheme {scheme!r}",
            f"use one of {', '.join(s + '://' for s in SCHEMES)}",
        )
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail(url, f"cannot be parsed: {exc}") from None
    query = tuple(parse_qsl(parts.query, keep_blank_values=True))
    if any(key == BACKING_IMAGE_PARAM for key, _ in query):
        raise _fail(url, "is a backup URL, not a target URL", "drop the '?backingImage=' part")
    _check_path(url, parts.path)
    if scheme == "s3":
        return _parse_s3(url, parts.username, parts.hostname, parts.path, query)
    if scheme == "nfs":
        if not parts.hostname:
            raise _fail(url, "has no NFS server", "use nfs://server:/export")
        if port is not None:
            raise _fail(
                url, "has a port; Longhorn's NFS URLs have none", "use nfs://server:/export"
            )
        if not parts.path.startswith("/"):
            raise _fail(url, "has no export path", "use nfs://server:/export")
        # Longhorn mounts `u.Host + u.Path` (nfs/nfs.go): an IPv6 server keeps its brackets.
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return BackupTarget(url, scheme, host, "", parts.path, query)
    if scheme == "cifs":
        if not parts.hostname or parts.path.strip("/") == "":
            raise _fail(url, "needs a server and a share", "use cifs://server/share/path")
        return BackupTarget(url, scheme, parts.hostname, "", parts.path, query)
    if scheme == "azblob":
        return _parse_azblob(url, parts.username, parts.hostname, parts.path, query)
    # vfs: a local directory, always absolute
    if parts.netloc:
        raise _fail(
            url, "must name an absolute local path", "use vfs:///absolute/path (three slashes)"
        )
    if not parts.path.startswith("/"):
        raise _fail(url, "must name an absolute local path", "use vfs:///absolute/path")
    return BackupTarget(url, scheme, "", "", posixpath.normpath(parts.path), query)


def _parse_s3(
    url: str, user: str | None, host: str | None, path: str, query: tuple[tuple[str, str], ...]
) -> BackupTarget:
    # s3://bucket@region/path/ puts the bucket in the user part; s3://bucket/path/ has no region.
    # Longhorn's backupstore (s3/s3.go) needs a bucket and a path ("/" will do), and checks
    # the bucket's name no further: S3-compatible stores have their own rules.
    bucket, region = (user, host or "") if user else (host, "")
    if not bucket:
        raise _fail(url, "has no bucket", "use s3://bucket@region/path/")
    if not path:  # s3/s3.go refuses an empty path ("invalid URL"), v1.6.4 .. v1.12.1
        raise _fail(
            url,
            "has no path: Longhorn's S3 driver needs one",
            "end it with '/', e.g. s3://bucket@region/ or s3://bucket@region/path/",
        )
    return BackupTarget(url, "s3", bucket, region, path, query)


# Azure's container names: 3-63 of [a-z0-9-], a letter or digit at both ends, no "--".
_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]\Z").match


def _parse_azblob(
    url: str, user: str | None, host: str | None, path: str, query: tuple[tuple[str, str], ...]
) -> BackupTarget:
    # As longhorn/backupstore azblob/azblob.go reads it: azblob://container@suffix/path, or
    # azblob://container/path (no suffix), and the path is required.
    container, suffix = (user, host or "") if user is not None else (host, "")
    if not container:
        raise _fail(url, "has no container", "use azblob://container@core.windows.net/path/")
    if not _CONTAINER(container):
        raise _fail(
            url,
            f"has an invalid container name {container!r}",
            "3-63 lower-case letters, digits or single '-', a letter or digit at both ends",
        )
    if not path:
        raise _fail(
            url, "has no path", "end it with '/' for the container's root: azblob://c@suffix/"
        )
    return BackupTarget(url, "azblob", container, suffix, path, query)


def format_backup_url(target: str | BackupTarget, backing_image: str) -> str:
    """The backup URL of `backing_image` on the target, exactly as Longhorn encodes it.

    A target given as a string is checked by parsing it; a parsed one is not parsed again."""
    problem = name_problem(backing_image)
    if problem:
        raise InvalidBackupURL(f"backing image name {problem}")
    target_url = target.url if isinstance(target, BackupTarget) else parse_target(target).url
    separator = "&" if "?" in target_url else "?"
    return f"{target_url}{separator}{BACKING_IMAGE_PARAM}={quote(backing_image, safe='')}"


def parse_backup_url(url: str) -> BackingImageBackupURL:
    """Split a backing image backup URL into its target and image name."""
    return _parse_backup_url_cached(url) if isinstance(url, str) else _parse_backup_url(url)


def _parse_backup_url(url: str) -> BackingImageBackupURL:
    plain = _PLAIN_BACKUP_URL(url) if isinstance(url, str) else None
    if plain is not None:
        # The form Longhorn writes, `<target>?backingImage=<name>` with a valid name and
        # nothing else in the query: one match does what the checks below would find.
        return BackingImageBackupURL(parse_target(plain[1]), plain[2])
    if not isinstance(url, str) or not url.strip():
        raise InvalidBackupURL(
            "backup URL is empty", hint="e.g. s3://bucket@us-east-1/?backingImage=parrot"
        )
    _check_chars(url)
    base, _, query = url.partition("?")
    params = parse_qsl(query, keep_blank_values=True)
    names = [value for key, value in params if key == BACKING_IMAGE_PARAM]
    if not names:
        raise _fail(
            url,
            "has no 'backingImage=' parameter",
            "take the URL from the BackupBackingImage's status.url, e.g. s3://bucket@region/?backingImage=NAME",
        )
    if len(names) > 1:
        raise _fail(url, "has more than one 'backingImage=' parameter")
    problem = name_problem(names[0])
    if problem:
        raise _fail(url, f"names an invalid backing image: the name {problem}")
    rest = [(key, value) for key, value in params if key != BACKING_IMAGE_PARAM]
    target_url = base + ("?" + urlencode(rest) if rest else "")
    return BackingImageBackupURL(parse_target(target_url), names[0])


_parse_target_cached = functools.lru_cache(maxsize=1024)(_parse_target)
_parse_backup_url_cached = functools.lru_cache(maxsize=1024)(_parse_backup_url)
