"""cifs:// driver: an SMB share reached with smbprotocol, without mounting it (no root needed).

The URL and credentials are read as Longhorn's cifs driver reads them (longhorn/backupstore
cifs/cifs.go, the same from bd231cf, pinned by longhorn-manager v1.6.0, to e5f4ddc, pinned
by v1.12.1): `cifs://server/share/path`, where Longhorn mounts `//server/share/path`, so the
store's root is `path` inside the share; CIFS_USERNAME and CIFS_PASSWORD from the environment,
both optional (Longhorn passes them as mount options, empty or not, and keeps both out of its
logs: so do we, including smbprotocol's own logs). A `$` in the share name (a hidden share)
is allowed: longhorn-manager refuses `$` in target paths except for cifs (v1.6.0
types/setting.go, v1.8.0+ datastore/longhorn.go checkBackupTargetURLFormat).
`?cifsOptions=` holds mount.cifs options (Longhorn's default is `soft`); without a mount,
three of them apply: `port=N` (mount.cifs has no port in the UNC name, so a port in the URL
is refused), `seal` (encryption) and `domain=NAME`.

Writes go to a temporary name, are flushed (SMB2 FLUSH: Samba fsyncs on it) and renamed
over the object, as the vfs driver does. A dropped connection is retried on a new one.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import random
import stat
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from longhorn_bi.engine.backup_url import BackupTarget
from longhorn_bi.engine.errors import BackupstoreError, InvalidInput, NotFound
from longhorn_bi.engine.store.drivers.base import StoreDriver, check_key
from longhorn_bi.engine.store.drivers.mounted import (
    MountedStore,
    existing_mount_point,
    split_mount_options,
)

T = TypeVar("T")
USERNAME_VAR = "CIFS_USERNAME"
PASSWORD_VAR = "CIFS_PASSWORD"
DEFAULT_PORT = 445
TMP_PREFIX = ".tmp-"  # as vfs: hidden from listings, cleaned up on failure
ATTEMPTS = 5
BASE_DELAY = 0.1
CONNECT_TIMEOUT = 15
OP_TIMEOUT = 60.0  # seconds for one operation (a 2 MiB block at 35 KB/s) before it is retried
# What smbprotocol, smbclient and pyspnego log through (a logger's filter does not see the
# records of its children, so each module's logger gets one).
_LIBRARY_LOGGERS = ("smbprotocol", "smbclient", "spnego")


class _Secrets(logging.Filter):
    """Redacts the credentials of every open CIFS store, in messages and in library logs."""

    def __init__(self) -> None:
        super().__init__()
        self.values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, *values: str) -> None:
        with self._lock:
            self.values.update(value for value in values if len(value) >= 3)
            for name in list(logging.root.manager.loggerDict):
                if name.split(".")[0] in _LIBRARY_LOGGERS:
                    logger = logging.getLogger(name)
                    if self not in logger.filters:
                        logger.addFilter(self)

    def redact(self, text: str) -> str:
        for value in sorted(self.values, key=len, reverse=True):
            text = text.replace(value, "***")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self.values:
            record.msg = self.redact(record.getMessage())
            record.args = None
        return True


SECRETS = _Secrets()


# A socket that the server (or the watchdog) closed under a request.
_SOCKET_ERRNOS = {errno.EBADF, errno.EPIPE, errno.ENOTCONN, errno.ECONNRESET, errno.ECONNABORTED}


def _connection_lost(exc: BaseException) -> bool:
    """Whether `exc` means the connection is gone (retried on a new one), not a refusal."""
    from smbprotocol.exceptions import SMBConnectionClosed

    if isinstance(exc, SMBConnectionClosed | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, ValueError):  # smbclient's "Failed to connect to 'server:port'"
        return str(exc).startswith("Failed to connect")
    return isinstance(exc, OSError) and exc.errno in _SOCKET_ERRNOS


def _abort(cache: dict[str, Any]) -> None:
    """End the connections of one thread's pool whose operation has waited too long.

    smbprotocol waits for an answer without a time limit, and when its receiver thread
    ends on a closed socket it does not mark the connection closed: a request sent just
    then waits forever (seen when the server process died between negotiate and session
    setup). Failing the connection wakes every waiter with SMBConnectionClosed, which
    `_call` retries on a new connection. Uses smbprotocol 1.x internals (_t_exc,
    outstanding_requests), as its own receiver does when it fails."""
    from smbprotocol.exceptions import SMBConnectionClosed

    for connection in list(cache.values()):
        connection._t_exc = SMBConnectionClosed("no answer from the CIFS server in time")
        for request in list(connection.outstanding_requests.values()):
            request.response_event.set()
        with contextlib.suppress(Exception):
            connection.transport.close()


@contextlib.contextmanager
def _closing(handle: Any) -> Iterator[Any]:
    """Close an smbclient file handle at the end of the block, whatever happens."""
    try:
        yield handle
    finally:
        try:
            handle.close()
        except Exception:
            # The connection died with the handle: nothing is left to close, and smbclient
            # would otherwise warn about an unclosed handle when the object is collected.
            handle.fd._connected = False
            raise


def share_location(target: BackupTarget) -> tuple[str, str, str]:
    """(server, share, folder inside the share) of a cifs:// target; the folder may be ""."""
    if urlsplit(target.url).port is not None:
        raise InvalidInput(
            f"backup target {target.url!r} has a port; Longhorn mounts //server/share, "
            "which has none",
            hint="give the port as a mount option: cifs://server/share/path?cifsOptions=port=N",
        )
    # Go's url.Parse decodes %XX in the path, and Longhorn mounts the decoded path.
    share, _, folder = unquote(target.path).strip("/").partition("/")
    return target.host, share, folder.strip("/")


class CifsStore:
    """A backupstore in a folder of an SMB share, over one SMB connection per thread."""

    op_timeout = OP_TIMEOUT

    def __init__(self, target: BackupTarget) -> None:
        import smbclient

        self._smb: Any = smbclient
        self._url = target.url
        self.server, self.share, folder = share_location(target)
        username = os.environ.get(USERNAME_VAR, "")
        password = os.environ.get(PASSWORD_VAR, "")
        SECRETS.add(username, password)
        port, encrypt = DEFAULT_PORT, False
        for option in split_mount_options(target, "cifsOptions") or []:
            name, _, value = option.partition("=")
            if name == "port":
                if not value.isdigit() or not 0 < int(value) < 65536:
                    raise InvalidInput(
                        f"cifsOptions port={value!r} is not a port number",
                        hint="use ?cifsOptions=port=N with N from 1 to 65535",
                    )
                port = int(value)
            elif name == "seal":
                encrypt = True
            elif name in ("domain", "dom", "workgroup") and value and username:
                username = f"{value}\\{username}"
        self.port = port
        self._session: dict[str, Any] = {
            "port": port,
            # as mount.cifs is given them: an empty password is a password; without a
            # user name smbprotocol tries Kerberos (a guest logon needs a mount)
            "username": username or None,
            "password": password if username else None,
            "connection_timeout": CONNECT_TIMEOUT,
        }
        if encrypt:
            self._session["encrypt"] = True
        # One connection per thread: smbprotocol does not wait for SMB credits, so threads
        # that share a connection fail with "requires N credits"; Samba also serves each
        # connection in its own process, so the workers run in parallel there too.
        self._local = threading.local()
        self._caches: list[dict[str, Any]] = []
        self._caches_lock = threading.Lock()
        self._share = f"\\\\{self.server}\\{self.share}"
        self._root = self._share + ("\\" + folder.replace("/", "\\") if folder else "")
        self._folders = {self._share}  # folders known to exist
        self._connect()
        SECRETS.add()  # pyspnego's loggers exist only once a logon has run

    @property
    def url(self) -> str:
        return self._url

    @property
    def local_listing(self) -> bool:
        return False  # other hosts write to the share too

    # -- connection and errors -------------------------------------------------------------

    def _connect(self) -> None:
        """Log on and reach the share now, so that a wrong password or share name is reported
        once, at the start, with what to fix."""
        from smbprotocol.exceptions import SMBAuthenticationError, SMBResponseException

        where = f"{self.server}:{self.port}"
        try:
            with self._deadline():
                self._ensure_connection()
                self._smb.register_session(self.server, **self._kw())
        except (SMBAuthenticationError, SMBResponseException) as exc:
            unset = "" if self._session["username"] else f"{USERNAME_VAR} is empty: "
            raise BackupstoreError(
                f"CIFS logon to {where} failed: {self._reason(exc)}",
                hint=f"{unset}check {USERNAME_VAR} and {PASSWORD_VAR} (the keys of Longhorn's "
                "backup target credential secret)",
            ) from None
        except (ValueError, OSError) as exc:
            raise BackupstoreError(
                f"cannot connect to CIFS server {where}: {self._reason(exc)}",
                hint="check the server name and that it serves SMB 2 or 3 on that port "
                "(?cifsOptions=port=N for another port)",
            ) from None
        except Exception as exc:  # pyspnego's errors have no common base with smbprotocol's
            raise BackupstoreError(f"CIFS logon to {where} failed: {self._reason(exc)}") from None
        try:
            self._call(
                f"access to share {self.share!r}",
                lambda: self._smb.stat(self._share, **self._kw()),
            )
        except NotFound:
            raise BackupstoreError(
                f"CIFS share {self.share!r} does not exist on {self.server}",
                hint="cifs://server/share/path: the first path segment is the share's name",
            ) from None

    def _kw(self) -> dict[str, Any]:
        """smbclient's session arguments, with this thread's connection pool."""
        cache: dict[str, Any] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = {}
            with self._caches_lock:
                self._caches.append(cache)
        return {**self._session, "connection_cache": cache}

    def _ensure_connection(self) -> None:
        """Give this thread's pool a live connection with a client GUID of its own.

        smbclient would open every connection with the process's one GUID, and Samba hands
        a new connection of a known client GUID over to the process that serves it
        (multichannel): with the workers connecting at once, a session setup was seen to go
        unanswered about once in fifteen backups. One GUID per connection avoids that."""
        from smbprotocol.connection import Connection

        cache = self._kw()["connection_cache"]
        key = f"{self.server.lower()}:{self.port}"  # smbclient's key for its pool
        connection = cache.get(key)
        if connection is not None and connection.transport.connected:
            return
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.disconnect(False)
        connection = Connection(uuid.uuid4(), self.server, self.port, require_signing=True)
        connection.connect(timeout=CONNECT_TIMEOUT)
        cache[key] = connection

    @contextlib.contextmanager
    def _deadline(self) -> Iterator[None]:
        """Fail this thread's connections when the block takes over `op_timeout` seconds."""
        watchdog = threading.Timer(self.op_timeout, _abort, (self._kw()["connection_cache"],))
        watchdog.daemon = True
        watchdog.start()
        try:
            yield
        finally:
            watchdog.cancel()

    def _reason(self, exc: BaseException) -> str:
        text = str(exc) or type(exc).__name__
        return SECRETS.redact(text.splitlines()[0] if text.strip() else text)

    def _call(self, what: str, fn: Callable[[], T]) -> T:
        """Run one SMB operation: a missing file is NotFound, a dropped connection is retried
        on a new one, anything else is a BackupstoreError without secrets."""
        from smbprotocol.exceptions import SMBException, SMBOSError

        for attempt in range(1, ATTEMPTS + 1):
            try:
                with self._deadline():
                    self._ensure_connection()
                    return fn()
            except SMBOSError as exc:
                if exc.errno == errno.ENOENT:
                    raise NotFound(f"{what} in {self._url}: not found") from None
                raise BackupstoreError(
                    f"CIFS {what} in {self._url} failed: {self._reason(exc)}"
                ) from None
            except (SMBException, ValueError, OSError) as exc:
                if not _connection_lost(exc) or attempt == ATTEMPTS:
                    raise BackupstoreError(
                        f"CIFS {what} in {self._url} failed: {self._reason(exc)}"
                    ) from None
            # The pool opens a new connection for a closed one: wait a little, then retry.
            time.sleep(BASE_DELAY * 2**attempt * random.uniform(0.5, 1.0))
        raise AssertionError("unreachable")

    def _path(self, key: str) -> str:
        return self._root + "\\" + check_key(key).replace("/", "\\")

    def _folder(self, prefix: str) -> str:
        prefix = prefix.strip("/")
        return self._path(prefix) if prefix else self._root

    def _open_raw(self, path: str, mode: str) -> Any:
        # share_access: readers never block a rename over the object or a delete of it
        return self._smb.open_file(path, mode=mode, buffering=0, share_access="rwd", **self._kw())

    @contextlib.contextmanager
    def _open(self, path: str, mode: str) -> Iterator[Any]:
        with _closing(self._open_raw(path, mode)) as handle:
            yield handle

    # -- the StoreDriver protocol ----------------------------------------------------------

    def read(self, key: str) -> bytes:
        def get() -> bytes:
            with self._open(self._path(key), "rb") as handle:
                return bytes(handle.readall())

        return self._call(f"read of {key}", get)

    def read_into(self, key: str, buffer: bytearray) -> int:
        """Read an object into `buffer`; its length, or -1 when it does not fit."""

        def get() -> int:
            with self._open(self._path(key), "rb") as handle:
                size = int(handle.fd.end_of_file)
                if size > len(buffer):
                    return -1
                view, done = memoryview(buffer), 0
                while done < size:
                    got = handle.readinto(view[done:size])
                    if not got:
                        break
                    done += got
                return done

        return self._call(f"read of {key}", get)

    def write(
        self, key: str, data: bytes | bytearray | memoryview, *, durable: bool = True
    ) -> None:
        """Atomic: written under a temporary name, flushed, then renamed over `key`. Every
        write is flushed (SMB has no flush of a whole share for sync() to send later)."""
        path = self._path(key)
        folder = path.rsplit("\\", 1)[0]
        view = memoryview(data).cast("B")

        def put() -> None:
            # pid and 64 random bits: unique among the hosts that share the store
            tmp = f"{folder}\\{TMP_PREFIX}{os.getpid()}-{os.urandom(8).hex()}"
            self._make_folder(folder)
            try:
                handle = self._open_raw(tmp, "xb")
            except OSError as exc:
                if getattr(exc, "errno", None) != errno.ENOENT:
                    raise
                self._folders.discard(folder)  # `rm` drops a folder once it is empty
                self._make_folder(folder)
                handle = self._open_raw(tmp, "xb")
            try:
                with _closing(handle):
                    done = 0
                    while done < len(view):
                        done += handle.write(view[done:])
                    handle.flush()
                self._smb.replace(tmp, path, **self._kw())
            except BaseException:
                self._remove_quietly(tmp)
                raise

        self._call(f"write of {key}", put)

    def _make_folder(self, folder: str) -> None:
        if folder not in self._folders:
            self._smb.makedirs(folder, exist_ok=True, **self._kw())
            self._folders.add(folder)

    def _remove_quietly(self, path: str) -> None:
        try:
            self._smb.remove(path, **self._kw())
        except Exception:  # the temporary file may not exist, or the connection is gone
            return

    def sync(self) -> None:
        return None  # every write was flushed before its rename

    def _stat(self, key: str) -> Any:
        path = self._path(key)
        return self._call(f"stat of {key}", lambda: self._smb.stat(path, **self._kw()))

    def exists(self, key: str) -> bool:
        try:
            return stat.S_ISREG(self._stat(key).st_mode)
        except NotFound:
            return False

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            self._call(f"delete of {key}", lambda: self._smb.remove(path, **self._kw()))
        except NotFound:
            return
        # Drop folders left empty (an image folder after `rm`), never the store root.
        folder = path.rsplit("\\", 1)[0]
        while len(folder) > len(self._root):
            self._folders.discard(folder)
            try:
                self._smb.rmdir(folder, **self._kw())
            except Exception:  # not empty (or gone): stop here
                break
            folder = folder.rsplit("\\", 1)[0]

    def _entries(self, folder: str) -> list[tuple[str, bool]]:
        """(name, is a folder) of each entry in `folder`; [] when it does not exist."""

        def scan() -> list[tuple[str, bool]]:
            return [
                (entry.name, entry.is_dir())
                for entry in self._smb.scandir(folder, **self._kw())
                if not entry.name.startswith(TMP_PREFIX)
            ]

        try:
            return self._call(f"list of {folder[len(self._root) :] or '/'}", scan)
        except NotFound:
            return []

    def walk(self, prefix: str) -> list[str]:
        found: list[str] = []
        pending = [(self._folder(prefix), "")]
        while pending:
            folder, relative = pending.pop()
            for name, is_dir in self._entries(folder):
                if is_dir:
                    pending.append((f"{folder}\\{name}", f"{relative}{name}/"))
                else:
                    found.append(relative + name)
        return sorted(found)

    def list(self, prefix: str) -> list[str]:
        return sorted(name for name, _ in self._entries(self._folder(prefix)))

    def size(self, key: str) -> int:
        return int(self._stat(key).st_size)

    def mtime(self, key: str) -> float:
        return float(self._stat(key).st_mtime)

    def close(self) -> None:
        with self._caches_lock:
            caches, self._caches = self._caches, []
        for cache in caches:
            self._smb.reset_connection_cache(fail_on_error=False, connection_cache=cache)


def open_cifs_store(target: BackupTarget, *, mount_point: str | None = None) -> StoreDriver:
    """The share over SMB, or, with `mount_point`, the folder where the user mounted
    `//server/share/path` (what Longhorn itself does: mount, then work on files)."""
    if mount_point:
        server, share, folder = share_location(target)
        source = "/".join(part for part in (f"//{server}", share, folder) if part)
        how = f"mount -t cifs -o soft,username=USER {source} DIR"
        return MountedStore(target.url, existing_mount_point(mount_point, how_to_mount=how))
    return CifsStore(target)
