"""Longhorn's backupstore file locks, for the BACKINGIMAGE folder, as Longhorn takes them.

A lock is a small JSON file ``{"Name":"lock-<16hex>","Type":1|2,"Acquired":false|true}``.
Type 1 is backup or restore, type 2 is delete; locks of the same type share. Acquiring is
one try (longhorn/backupstore lock.go `Lock`, vendored by backing-image-manager v1.6.4 ..
v1.12.1): write the file, wait 2 s (clock skew, second-precision store times), give way to
any unexpired lock of the other type that has priority (acquired first, then older, then
smaller name) by removing ours at once, else rewrite it as acquired and refresh it every
60 s. Longhorn's callers retry the whole try with a backoff; so do we, up to 30 s. A lock
file that waits is never left behind: it would block a Longhorn operation of the other type.

The lock is acquired before the operation reads or writes anything on the store (Longhorn's
backup, restore and delete in backupbackingimage.go and backupstore.go do the same).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from dataclasses import dataclass
from types import TracebackType

from longhorn_bi.engine.errors import BackupstoreError, LockConflict, NotFound
from longhorn_bi.engine.store.drivers.base import StoreDriver, read_at_most
from longhorn_bi.engine.store.layout import LOCK_SUFFIX, go_json, lock_dir, lock_key

MAX_LOCK_BYTES = 4096  # a lock file is some 60 bytes
BACKUP_LOCK = 1  # also restore
DELETION_LOCK = 2


@dataclass(frozen=True)
class LockTimings:
    check_wait: float = 2.0  # between writing the lock and looking at the others
    check_interval: float = 1.0  # the first pause before trying again; doubles, up to 8 s
    max_wait: float = 30.0  # give up once this much time has passed
    duration: float = 150.0  # a lock not refreshed for this long is ignored
    refresh: float = 60.0


DEFAULT_TIMINGS = LockTimings()
# On a local file system every contender runs on this host: one clock, nanosecond times and a
# listing that shows a new file at once. Longhorn's 2 s covers NFS attribute caching
# (actimeo=1), store times of one-second precision and clock skew between nodes.
LOCAL_TIMINGS = LockTimings(check_wait=0.2)


@dataclass(frozen=True)
class LockInfo:
    name: str
    type: int
    acquired: bool
    server_time: float


def _has_priority(a: LockInfo, b: LockInfo) -> bool:
    """Whether `a` goes before `b`: acquired first, then older, then smaller name."""
    if a.acquired != b.acquired:
        return a.acquired
    if a.server_time != b.server_time:
        return a.server_time < b.server_time
    return a.name < b.name


def list_locks(store: StoreDriver) -> list[LockInfo]:
    """Every readable lock of the BACKINGIMAGE folder; unreadable ones are skipped."""
    found = []
    for entry in store.list(lock_dir()):
        if not entry.endswith(LOCK_SUFFIX):
            continue
        name = entry[: -len(LOCK_SUFFIX)]
        try:
            key = lock_key(name)
            doc = json.loads(read_at_most(store, key, MAX_LOCK_BYTES))
            found.append(LockInfo(name, int(doc["Type"]), bool(doc["Acquired"]), store.mtime(key)))
        except (NotFound, BackupstoreError, ValueError, KeyError, TypeError, RecursionError):
            continue
    return found


class BackupstoreLock:
    """`with BackupstoreLock(store, type):` acquires (or raises LockConflict) and releases."""

    def __init__(
        self, store: StoreDriver, lock_type: int, timings: LockTimings = DEFAULT_TIMINGS
    ) -> None:
        self.store = store
        self.type = lock_type
        if timings is DEFAULT_TIMINGS and getattr(store, "local_listing", False):
            timings = LOCAL_TIMINGS
        self.timings = timings
        self.name = "lock-" + uuid.uuid4().hex[:16]
        self.acquired = False
        self._server_time = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def _save(self) -> None:
        key = lock_key(self.name)
        body = go_json({"Name": self.name, "Type": self.type, "Acquired": self.acquired})
        self.store.write(key, body)
        self._server_time = self.store.mtime(key)

    def others(self) -> list[LockInfo]:
        """The other unexpired locks in the folder."""
        now = time.time()
        return [
            lock
            for lock in list_locks(self.store)
            if lock.name != self.name and now - lock.server_time <= self.timings.duration
        ]

    def _blocked(self) -> bool:
        me = LockInfo(self.name, self.type, self.acquired, self._server_time)
        return any(other.type != self.type and _has_priority(other, me) for other in self.others())

    def _try_once(self) -> bool:
        """Longhorn's one try: write, wait, look; on losing, remove the file at once."""
        self._save()
        time.sleep(self.timings.check_wait)
        if self._blocked():
            self._remove()
            return False
        with self._mutex:
            self.acquired = True
            self._save()
        return True

    def acquire(self) -> BackupstoreLock:
        """Try, and while another operation has priority, pause and try again."""
        started = time.monotonic()
        pause = self.timings.check_interval
        try:
            while not self._try_once():
                waited = time.monotonic() - started
                if waited + pause > self.timings.max_wait:
                    raise LockConflict(
                        "another operation holds the backupstore's backing image lock "
                        f"(gave up after {waited:.0f} s)",
                        hint="a delete (type 2) and backups/restores (type 1) exclude each "
                        "other; retry when it has finished",
                    )
                time.sleep(pause)
                pause = min(pause * 2, 8.0)
        except BaseException:
            self._remove()
            raise
        self._thread = threading.Thread(target=self._refresh, name="lock-refresh", daemon=True)
        self._thread.start()
        return self

    def _refresh(self) -> None:
        while not self._stop.wait(self.timings.refresh):
            with self._mutex:
                if self.acquired and not self._stop.is_set():
                    # Nothing to do on failure: the lock lasts 2.5 refresh periods.
                    with contextlib.suppress(BackupstoreError):
                        self._save()

    def _remove(self) -> None:
        with contextlib.suppress(BackupstoreError):  # an expired lock is ignored after 150 s
            self.store.delete(lock_key(self.name))

    def release(self) -> None:
        with self._mutex:
            self._stop.set()
            self.acquired = False
        if self._thread is not None:
            self._thread.join()
        self._remove()

    def __enter__(self) -> BackupstoreLock:
        return self.acquire()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
