"""Follow one Longhorn object until it is done, failed or out of time, showing progress.

`kubectl wait` cannot fail fast on `state: Error` and shows no progress. Here a watch
(started at the resourceVersion of a get, so that nothing is missed) feeds a judge that
reads the object's status; a dropped watch or a 410 Gone is followed by a fresh get and a
new watch with backoff, and an API server that stops answering is retried for a while
(30 s, LONGHORN_BI_WAIT_RETRY) before the wait gives up with what was last seen.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import click

from longhorn_bi.engine.errors import ClusterError, WaitFailed
from longhorn_bi.plugin.kube import KINDS, Kube, Unreachable, WatchExpired, format_duration

# One watch request covers at most this long; the server then ends it and we re-watch.
WATCH_WINDOW = 300.0
# How long an API server may stay unreachable (a restart, a leader change) before --wait
# gives up; LONGHORN_BI_WAIT_RETRY overrides it (seconds).
RETRY_ENV, RETRY_DEFAULT = "LONGHORN_BI_WAIT_RETRY", 30.0
BACKOFF_FIRST, BACKOFF_MAX = 0.25, 4.0
LINE_STEP = 10  # without a TTY, print a line every this many percent (and on state changes)


@dataclass(frozen=True)
class Snapshot:
    """What a judge reads from an object's status."""

    state: str
    progress: int | None = None
    done: bool = False
    error: str | None = None  # set when the object failed

    def describe(self) -> str:
        return f"{self.state} {self.progress}%" if self.progress is not None else self.state


Judge = Callable[[Mapping[str, Any]], Snapshot]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _percent(value: Any) -> int | None:
    return (
        max(0, min(100, value)) if isinstance(value, int) and not isinstance(value, bool) else None
    )


def backup_judge(obj: Mapping[str, Any]) -> Snapshot:
    """A BackupBackingImage: done on Completed, failed on Error (with status.error)."""
    status = _mapping(obj.get("status"))
    state = status.get("state") if isinstance(status.get("state"), str) else ""
    progress = _percent(status.get("progress"))
    error = status.get("error") if isinstance(status.get("error"), str) else ""
    if state == "Error":
        return Snapshot(state, progress, error=error or "Longhorn reported state Error")
    return Snapshot(state or "Pending", progress, done=state == "Completed")


FAILED_COPY_STATES = ("failed", "failed-and-cleanup")
COPY_STATE_ORDER = ("", "unknown", "pending", "starting", "in-progress", "ready-for-transfer")


def restore_judge(obj: Mapping[str, Any]) -> Snapshot:
    """A BackingImage: done when its first copy is ready, failed when a copy failed first."""
    disks = [
        _mapping(d) for d in _mapping(_mapping(obj.get("status")).get("diskFileStatusMap")).values()
    ]
    states = [d.get("state") if isinstance(d.get("state"), str) else "" for d in disks]
    progress = max(
        (p for d in disks if (p := _percent(d.get("progress"))) is not None), default=None
    )
    if "ready" in states:
        return Snapshot("ready", 100, done=True)
    for disk, state in zip(disks, states, strict=True):
        if state in FAILED_COPY_STATES:
            message = disk.get("message") if isinstance(disk.get("message"), str) else ""
            return Snapshot(state, progress, error=message or f"the first copy is {state}")
    known = [s for s in states if s in COPY_STATE_ORDER]
    state = max(known, key=COPY_STATE_ORDER.index, default="") or "pending"
    return Snapshot(state, progress)


def _columns(stream: TextIO) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 0


class ProgressView:
    """A progress bar on a terminal; elsewhere one line per state change or LINE_STEP %."""

    def __init__(self, label: str, stream: TextIO | None = None) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.bar: Any = None
        self.shown: Snapshot | None = None

    def show(self, snap: Snapshot) -> None:
        if self.tty:
            self._bar(snap)
        elif self._worth_a_line(snap):
            click.echo(f"{self.label}: {snap.describe()}", file=self.stream)
        self.shown = snap

    def _worth_a_line(self, snap: Snapshot) -> bool:
        last = self.shown
        if last is None or last.state != snap.state or snap.error or snap.done:
            return last != snap
        if snap.progress is None or last.progress is None:
            return snap.progress != last.progress
        return snap.progress >= last.progress + LINE_STEP or (
            snap.progress == 100 and last.progress != 100
        )

    def _bar(self, snap: Snapshot) -> None:
        if self.bar is None:
            from tqdm import tqdm

            # A terminal that reports no size (some CI ptys) would get an empty bar.
            sized = _columns(self.stream) > 0
            self.bar = tqdm(
                total=100,
                desc=self.label,
                file=self.stream,
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix} [{elapsed}]",
                dynamic_ncols=sized,
                ncols=None if sized else 80,
            )
        self.bar.n = snap.progress or 0
        self.bar.set_postfix_str(snap.state, refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def retry_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get(RETRY_ENV, RETRY_DEFAULT)))
    except ValueError:
        return RETRY_DEFAULT


class Follower:
    """Follows one object of `kube`'s namespace until `judge` says done or failed."""

    def __init__(
        self,
        kube: Kube,
        plural: str,
        name: str,
        judge: Judge,
        *,
        timeout: float | None,
        stream: TextIO | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.kube, self.plural, self.name, self.judge = kube, plural, name, judge
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout if timeout else None
        self.what = f"{KINDS.get(plural, plural)} {name!r}"
        self.view = ProgressView(f"{KINDS.get(plural, plural).lower()}/{name}", stream)
        self.sleep = sleep
        self.last = Snapshot("unknown")

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def run(self, first: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """The object once done; WaitFailed when it failed or time ran out."""
        try:
            return self._run(first)
        finally:
            self.view.close()

    def _run(self, first: Mapping[str, Any] | None) -> Mapping[str, Any]:
        backoff, obj = BACKOFF_FIRST, first
        unreachable_since: float | None = None
        while True:
            try:
                if obj is None:
                    obj = self.kube.get(self.plural, self.name)
                    unreachable_since = None
                if self._settled(obj):
                    return obj
                remaining = self.remaining()
                if remaining is not None and remaining <= 0:
                    raise self._timed_out()
                settled, events = self._watch(obj, remaining)
                if settled is not None:
                    return settled
                unreachable_since = None
                if events:  # news, then the stream ended: catch up at once
                    backoff, obj = BACKOFF_FIRST, None
                    continue
            except Unreachable as exc:
                now = time.monotonic()
                unreachable_since = unreachable_since or now
                if now - unreachable_since >= retry_seconds():
                    raise self._lost(exc) from None
            # A watch that ended without news (dropped, expired or its window over), or no
            # answer at all: pause, then get the object afresh and watch again.
            remaining = self.remaining()
            if remaining is not None and remaining <= 0:
                raise self._timed_out()
            self.sleep(backoff if remaining is None else min(backoff, remaining))
            backoff, obj = min(backoff * 2, BACKOFF_MAX), None

    def _settled(self, obj: Mapping[str, Any]) -> bool:
        snap = self.judge(obj)
        self.last = snap
        self.view.show(snap)
        if snap.error is not None:
            raise WaitFailed(f"{self.what} failed: {snap.error}", hint=f"see: {self.see()}")
        return snap.done

    def see(self) -> str:
        if self.plural == "backupbackingimages":
            return f"kubectl longhorn-bi describe {self.name} -n {self.kube.namespace}"
        return f"kubectl -n {self.kube.namespace} describe {self.plural}.longhorn.io {self.name}"

    def _watch(
        self, obj: Mapping[str, Any], remaining: float | None
    ) -> tuple[Mapping[str, Any] | None, bool]:
        """Watch from `obj`: (the object once settled, else None; whether any event came)."""
        version = str(_mapping(obj.get("metadata")).get("resourceVersion") or "")
        window = WATCH_WINDOW if remaining is None else min(WATCH_WINDOW, max(remaining, 1.0))
        events = False
        try:
            for kind, newer in self.kube.watch(self.plural, self.name, version, window):
                if kind == "BOOKMARK":
                    continue
                if kind == "DELETED":
                    raise WaitFailed(
                        f"{self.what} was deleted while waiting for it (last: "
                        f"{self.last.describe()})"
                    )
                events = True
                if self._settled(newer):
                    return newer, True
                deadline = self.remaining()
                if deadline is not None and deadline <= 0:
                    raise self._timed_out()
        except WatchExpired:
            pass
        return None, events

    def _timed_out(self) -> WaitFailed:
        return WaitFailed(
            f"timed out after {format_duration(self.timeout or 0)} waiting for {self.what} "
            f"(last: {self.last.describe()})",
            hint=f"it may still finish: raise --timeout, or look with: {self.see()}",
        )

    def _lost(self, exc: ClusterError) -> ClusterError:
        return ClusterError(
            f"{exc.message} (lost while waiting for {self.what}; last: {self.last.describe()})",
            hint="Longhorn may still be working on it; check again once the API server is back",
        )
