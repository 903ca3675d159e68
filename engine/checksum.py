"""Streaming SHA-512 of a local file or an http(s) URL: the value of a BackingImage's
spec.checksum (download and export types)."""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, NotFound

CHUNK = 1024 * 1024
Progress = Callable[[int], None]


def _redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password or parts.username:
        netloc = parts.hostname or ""
        if parts.port:
            netloc += f":{parts.port}"
        return parts._replace(netloc=netloc, query="").geturl()
    return parts._replace(query="").geturl() if parts.query else url


def sha512_file(path: str | Path, progress: Progress | None = None) -> str:
    """SHA-512 of a local file, read in 1 MiB chunks into one reused buffer."""
    hasher = hashlib.sha512()
    buffer = bytearray(CHUNK)
    view = memoryview(buffer)
    try:
        with open(path, "rb", buffering=0) as handle:
            while got := handle.readinto(buffer):
                hasher.update(view[:got])
                if progress is not None:
                    progress(got)
    except FileNotFoundError:
        raise NotFound(f"file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(
            f"{str(path)!r} is a directory", hint="give a file or an http(s) URL"
        ) from None
    except OSError as exc:
        raise BackupstoreError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    return hasher.hexdigest()


def sha512_url(url: str, progress: Progress | None = None, timeout: float = 60.0) -> str:
    """SHA-512 of what an http(s) URL serves, streamed (never held in memory)."""
    shown = _redact_url(url)
    hasher = hashlib.sha512()
    try:
        with urllib.request.urlopen(
            url, timeout=timeout
        ) as response:  # http(s) only: checked by sha512_of
            while chunk := response.read(CHUNK):
                hasher.update(chunk)
                if progress is not None:
                    progress(len(chunk))
    except urllib.error.HTTPError as exc:
        raise NotFound(f"{shown} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise BackupstoreError(f"cannot download {shown}: {reason}") from None
    return hasher.hexdigest()


def sha512_of(source: str, progress: Progress | None = None) -> str:
    """SHA-512 of a file path or an http(s) URL."""
    if "\x00" in source:
        raise InvalidInput("the file name contains a NUL character")
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme in ("http", "https"):
        return sha512_url(source, progress)
    if scheme:
        raise InvalidInput(
            f"unsupported URL scheme {scheme!r} in {_redact_url(source)!r}",
            hint="give a local file or an http(s):// URL",
        )
    return sha512_file(os.fspath(source), progress)
