"""The small protocol every backupstore driver implements, and what every driver shares.

Keys are '/'-separated paths relative to the store root, built by store.layout.
This module sits below the drivers; the registry that picks one (`open_store`) sits above
them in drivers/__init__.py, so that no import runs in a circle.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from longhorn_bi.engine.errors import BackupstoreError


@runtime_checkable
class StoreDriver(Protocol):
    """A flat key/value view of a backupstore."""

    @property
    def url(self) -> str:
        """The target URL, safe to print (no secrets)."""
        ...

    def read(self, key: str) -> bytes:
        """The whole object; NotFound when it does not exist."""
        ...

    def write(
        self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        """Store an object atomically: readers see the old object, the new one or none.

        `durable=False` defers flushing to stable storage until the next `sync()`.
        """
        ...

    def sync(self) -> None:
        """Make every write so far durable (a barrier before a cfg that claims them)."""
        ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove an object; a missing one is not an error."""
        ...

    def walk(self, prefix: str) -> list[str]:
        """Keys of every object under the folder `prefix`, relative to it (one listing on S3)."""
        ...

    def list(self, prefix: str) -> list[str]:
        """Names of the objects and folders directly under `prefix` (a folder key)."""
        ...

    def size(self, key: str) -> int: ...

    def mtime(self, key: str) -> float:
        """The store's modification time of the object (seconds since the epoch, UTC)."""
        ...

    def close(self) -> None: ...


def fill(buffer: bytearray, data: bytes) -> int:
    """What a driver's optional `read_into(key, buffer)` returns once it has fetched `data`
    with a range of len(buffer)+1 bytes (so that an oversized object is never fetched
    whole): the length, copied into `buffer`, or -1 when the object does not fit."""
    if len(data) > len(buffer):
        return -1
    buffer[: len(data)] = data
    return len(data)


class _Body(Protocol):
    def readinto(self, buffer: memoryview, /) -> int: ...

    def read(self, amount: int, /) -> bytes: ...


STREAM_CHUNK = 256 * 1024


def stream_into(buffer: bytearray, body: _Body) -> int:
    """`fill` for a response body read straight into `buffer`, STREAM_CHUNK at a time: a
    whole-body read() holds the body twice more (http.client joins the socket's chunks,
    urllib3 copies them) on each worker thread, which was the S3 restore's peak RSS."""
    view = memoryview(buffer)
    length = 0
    while length < len(view):
        count = body.readinto(view[length : length + STREAM_CHUNK])
        if count == 0:
            return length
        length += count
    return -1 if body.read(1) else length


def check_key(key: str) -> str:
    """Refuse keys that could leave the store root."""
    if not key or key.startswith("/") or "\x00" in key or "\\" in key:
        raise BackupstoreError(f"invalid backupstore key {key!r}")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise BackupstoreError(f"invalid backupstore key {key!r}")
    return key


class TooLarge(BackupstoreError):
    """An object is larger than anything of its kind can be: a damaged or hostile store."""


def read_at_most(store: StoreDriver, key: str, limit: int) -> bytes:
    """The whole object at `key`, refused (TooLarge) if it holds more than `limit` bytes,
    without ever holding more than about `limit` bytes in memory.

    A driver may offer `read_at_most(key, limit)` (one request that stops reading early);
    otherwise the size is asked first."""
    bounded = getattr(store, "read_at_most", None)
    if bounded is not None:
        data: bytes = bounded(key, limit)
    else:
        if store.size(key) > limit:
            raise TooLarge(f"{key} is larger than {limit} bytes")
        data = store.read(key)
    if len(data) > limit:  # it grew in between, or a driver ignored the limit
        raise TooLarge(f"{key} is larger than {limit} bytes")
    return data
