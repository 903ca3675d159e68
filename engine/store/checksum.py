"""Streaming SHA-512 of a local file or an http(s) URL: the value of a BackingImage's
spec.checksum (download and export types)."""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import unquote, urlsplit

from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, NotFound

CHUNK = 1024 * 1024
READ_CHUNK = 4 * 1024 * 1024
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
    """SHA-512 of a local file.

    A reader thread fills reused buffers while this thread hashes (both release the GIL),
    so reading overlaps hashing; memory stays at a few MiB whatever the file size.
    """
    hasher = hashlib.sha512()
    try:
        with open(path, "rb", buffering=0) as handle:
            for view in _read_ahead(handle):
                hasher.update(view)
                if progress is not None:
                    progress(len(view))
    except FileNotFoundError:
        raise NotFound(f"file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(
            f"{str(path)!r} is a directory", hint="give a file or an http(s) URL"
        ) from None
    except OSError as exc:
        raise BackupstoreError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    return hasher.hexdigest()


def _read_ahead(handle: BinaryIO, buffers: int = 3) -> Iterator[memoryview]:
    free: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
    full: queue.SimpleQueue[tuple[bytearray, int] | BaseException | None] = queue.SimpleQueue()
    for _ in range(buffers):
        free.put(bytearray(READ_CHUNK))
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                buffer = free.get()
                got = handle.readinto(buffer)  # type: ignore[attr-defined]
                if not got:
                    break
                full.put((buffer, got))
            full.put(None)
        except BaseException as exc:
            full.put(exc)

    thread = threading.Thread(target=reader, name="sha512-read", daemon=True)
    thread.start()
    try:
        while (item := full.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            buffer, got = item
            yield memoryview(buffer)[:got]
            free.put(buffer)
    finally:
        stop.set()
        free.put(bytearray(0))  # unblock a reader waiting for a buffer
        thread.join()


def sha512_url(url: str, progress: Progress | None = None, timeout: float = 60.0) -> str:
    """SHA-512 of what an http(s) URL serves, streamed (never held in memory)."""
    import urllib.error
    import urllib.request

    shown = _redact_url(url)
    parts = urlsplit(url)
    headers = {}
    if parts.username is not None:  # user:password@ becomes HTTP basic authentication
        token = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(token).decode()
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        url = parts._replace(netloc=netloc + (f":{parts.port}" if parts.port else "")).geturl()
    request = urllib.request.Request(url, headers=headers)  # http(s) only: see sha512_of
    hasher = hashlib.sha512()
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
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
