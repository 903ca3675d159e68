"""Longhorn's backupstore file locks (longhorn/backupstore lock.go), for the BACKINGIMAGE folder.

A lock is a small JSON file ``{"Name":"lock-<16hex>","Type":1|2,"Acquired":false|true}``.
Type 1 is backup or restore, type 2 is delete; locks of the same type share. Acquire: write
the file, wait 2 s (clock skew, second-precision store times), then give way to any unexpired
lock of the other type that has priority (acquired first, then older, then smaller name);
rewrite as acquired and refresh it every 60 s; give up after 30 s.

`BackupstoreLock.start()` writes the file at once (so that a later delete sees us and gives
way) and runs the acquisition in a thread; the caller overlaps its own work with the 2 s
wait and calls `wait_acquired()` before the step that needs exclusion (the final cfg).
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
from longhorn_bi.engine.store.drivers.base import StoreDriver
from longhorn_bi.engine.store.layout import LOCK_SUFFIX, go_json, lock_dir, lock_key

BACKUP_LOCK = 1  # also restore
DELETION_LOCK = 2


@dataclass(frozen=True)
class LockTimings:
    check_wait: float = 2.0
    check_interval: float = 10.0
    max_wait: float = 30.0
    duration: float = 150.0
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
            doc = json.loads(store.read(key))
            found.append(LockInfo(name, int(doc["Type"]), bool(doc["Acquired"]), store.mtime(key)))
        except (NotFound, BackupstoreError, ValueError, KeyError, TypeError):
            continue
    return found


class BackupstoreLock:
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
        self.saw_other_type = False  # a lock of the other type existed while we waited
        self._server_time = 0.0
        self._stop = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    def _save(self) -> None:
        key = lock_key(self.name)
        body = go_json({"Name": self.name, "Type": self.type, "Acquired": self.acquired})
        self.store.write(key, body)
        self._server_time = self.store.mtime(key)

    def _others(self) -> list[LockInfo]:
        others = [lock for lock in list_locks(self.store) if lock.name != self.name]
        if any(lock.type != self.type for lock in others):
            self.saw_other_type = True
        return others

    def _can_acquire(self) -> bool:
        me = LockInfo(self.name, self.type, self.acquired, self._server_time)
        now = time.time()
        for other in self._others():
            unexpired = now - other.server_time <= self.timings.duration
            if other.type != self.type and _has_priority(other, me) and unexpired:
                return False
        return True

    def start(self) -> BackupstoreLock:
        """Write the lock file now and acquire it in the background."""
        self._save()
        self._others()  # a delete that is running right now must be noticed
        self._thread = threading.Thread(target=self._run, name=f"lock-{self.type}", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            if self._stop.wait(self.timings.check_wait):
                return
            while not self._stop.is_set():
                if self._can_acquire():
                    with self._mutex:
                        if self._stop.is_set():
                            return
                        self.acquired = True
                        self._save()
                    self._done.set()
                    while not self._stop.wait(self.timings.refresh):
                        with self._mutex:
                            if not self._stop.is_set():
                                self._save()
                    return
                if time.time() - self._server_time > self.timings.max_wait:
                    raise LockConflict(
                        "another operation holds the backupstore's backing image lock "
                        f"(gave up after {self.timings.max_wait:.0f} s)",
                        hint="a delete (type 2) and backups/restores (type 1) exclude each other; "
                        "retry when it has finished",
                    )
                self._stop.wait(self.timings.check_interval)
        except BaseException as exc:
            self._error = exc
        finally:
            self._done.set()

    def wait_acquired(self) -> None:
        """Block until the lock is ours; LockConflict when it cannot be had."""
        self._done.wait()
        if self._error is not None:
            raise self._error
        if not self.acquired:
            raise LockConflict("the backupstore lock was released before it was acquired")

    def release(self) -> None:
        with self._mutex:
            self._stop.set()
            self.acquired = False
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(BackupstoreError):  # an expired lock is ignored after 150 s
            self.store.delete(lock_key(self.name))

    def __enter__(self) -> BackupstoreLock:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
