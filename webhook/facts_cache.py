"""Live cluster facts: list+watch caches of the Longhorn objects the rules need.

Each cache lists its resource, then watches from the list's resourceVersion; a dropped
watch resumes from the last version seen, a 410 Gone lists again, and errors back off
exponentially (with jitter, so replicas do not retry in step). `facts()` turns the cached
objects into ClusterFacts, rebuilt only when something changed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp

from longhorn_bi.engine.errors import ClusterError, InvalidInput
from longhorn_bi.engine.facts import (
    BACKUP_TARGET_SETTING,
    VOLUMES,
    ClusterFacts,
    facts_from_objects,
    volume_fields,
)
from longhorn_bi.engine.versions import LonghornVersion, detect_version
from longhorn_bi.webhook.kube import ApiStatusError, Expired, KubeClient
from longhorn_bi.webhook.metrics import Metrics
from longhorn_bi.webhook.tls import cancel_quietly

GROUP_PATH = "/apis/longhorn.io/v1beta2"
CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
# The CRDs detect_version reads; the chart grants `get` on exactly these names.
VERSION_CRDS = ("backingimages.longhorn.io", "backupbackingimages.longhorn.io")


class FactsSource(Protocol):
    """What the review handler needs: the version, the facts, and whether they are synced."""

    # None until the version is known (detected from the CRDs, or given). An attribute, not
    # a property: the review handler reads it per review.
    version: LonghornVersion | None

    def facts(self) -> ClusterFacts: ...

    def ready(self) -> bool: ...

    def ages(self) -> Iterable[tuple[str, float | None]]: ...


@dataclass
class StaticFacts:
    """Fixed facts: for tests, and for running without a cluster."""

    version: LonghornVersion | None
    fixed: ClusterFacts

    def facts(self) -> ClusterFacts:
        return self.fixed

    def ready(self) -> bool:
        return True

    def ages(self) -> Iterable[tuple[str, float | None]]:
        return ()


@dataclass(frozen=True)
class Backoff:
    initial: float = 0.5
    maximum: float = 30.0

    def delays(self) -> Iterable[float]:
        delay = self.initial
        while True:
            yield delay * random.uniform(0.8, 1.2)
            delay = min(delay * 2, self.maximum)


@dataclass(frozen=True)
class ResourceSpec:
    plural: str
    kind: str
    field_selector: str = ""
    name: str = ""  # keep only the object of this name (the selector may be ignored)
    # An optional resource names the ClusterFacts collection it feeds: that collection is
    # unknown until its cache syncs (e.g. while RBAC denies it), and every other fact is
    # served meanwhile.
    optional: str = ""
    # What of an object to keep (None: all of it); a change outside it is no change.
    project: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    def wanted(self, obj: Mapping[str, Any]) -> bool:
        return not self.name or _name(obj) == self.name


def resources_for(version: LonghornVersion) -> tuple[ResourceSpec, ...]:
    """The resources whose objects feed the rules, for a version line: BackupTargets from 1.8
    (longhorn-manager v1.8.0 added the CRD), the backup-target Setting before; Volumes only
    for the export rule, so optional (a chart whose Role predates them still works)."""
    if version.has_backup_target_crd:
        target = ResourceSpec("backuptargets", "BackupTarget")
    else:
        target = ResourceSpec(
            "settings",
            "Setting",
            field_selector=f"metadata.name={BACKUP_TARGET_SETTING}",
            name=BACKUP_TARGET_SETTING,
        )
    return (
        target,
        ResourceSpec("backingimages", "BackingImage"),
        ResourceSpec("backupbackingimages", "BackupBackingImage"),
        ResourceSpec("volumes", "Volume", optional=VOLUMES, project=volume_fields),
    )


def _name(obj: Mapping[str, Any]) -> str:
    meta = obj.get("metadata")
    name = meta.get("name") if isinstance(meta, Mapping) else None
    return name if isinstance(name, str) else ""


def _resource_version(obj: Any) -> str:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    rv = meta.get("resourceVersion") if isinstance(meta, Mapping) else None
    return str(rv) if rv else ""


class ResourceCache:
    """The objects of one resource in one namespace, kept current by list+watch."""

    def __init__(
        self,
        client: KubeClient,
        spec: ResourceSpec,
        namespace: str,
        *,
        on_change: Callable[[], None],
        metrics: Metrics | None = None,
        logger: logging.Logger | None = None,
        backoff: Backoff = Backoff(),
        watch_timeout: int = 300,
    ) -> None:
        self.client = client
        self.spec = spec
        self.path = f"{GROUP_PATH}/namespaces/{namespace}/{spec.plural}"
        self.objects: dict[str, Mapping[str, Any]] = {}
        self.resource_version = ""
        self.synced = asyncio.Event()
        self.lists = 0  # how many full lists were made: 1 + re-lists after 410 Gone
        self._current_at: float | None = None
        self._on_change = on_change
        self._metrics = metrics
        self._log = logger or logging.getLogger(__name__)
        self._backoff = backoff
        self._watch_timeout = watch_timeout

    @property
    def age(self) -> float | None:
        """Seconds since the cache was last known current; None before the first list."""
        return None if self._current_at is None else time.monotonic() - self._current_at

    def _mark_current(self) -> None:
        self._current_at = time.monotonic()

    def _params(self) -> dict[str, str]:
        return {"fieldSelector": self.spec.field_selector} if self.spec.field_selector else {}

    def _keep(self, obj: Any) -> Mapping[str, Any] | None:
        if not isinstance(obj, Mapping) or not self.spec.wanted(obj) or not _name(obj):
            return None
        # List items may omit kind and apiVersion; facts_from_objects needs them.
        kept = {"apiVersion": "longhorn.io/v1beta2", "kind": self.spec.kind, **obj}
        return kept if self.spec.project is None else self.spec.project(kept)

    async def _list(self) -> None:
        items, rv = await self.client.list(self.path, self._params())
        objects = {}
        for item in items:
            kept = self._keep(item)
            if kept is not None:
                objects[_name(kept)] = kept
        self.objects = objects
        self.resource_version = rv
        self.lists += 1
        self._mark_current()
        self.synced.set()
        self._on_change()
        self._log.info(
            "listed", extra={"resource": self.spec.plural, "count": len(objects), "rv": rv}
        )

    async def _watch(self) -> bool:
        """Follow the watch until it ends; True when it delivered events or stayed open a
        while (an idle watch that the server ends after timeoutSeconds is healthy)."""
        started = time.monotonic()
        progressed = False
        params = {**self._params(), "resourceVersion": self.resource_version}
        events = self.client.watch(self.path, params, self._watch_timeout, self._mark_current)
        async for etype, obj in events:
            progressed = True
            self._mark_current()
            rv = _resource_version(obj)
            if etype == "BOOKMARK":
                self.resource_version = rv or self.resource_version
                continue
            kept = self._keep(obj)
            if kept is not None:
                name = _name(kept)
                before = self.objects.get(name)
                if etype == "DELETED":
                    self.objects.pop(name, None)
                elif etype in {"ADDED", "MODIFIED"}:
                    self.objects[name] = kept
                # Unchanged facts (a projected object whose kept part stayed) keep the built
                # ClusterFacts: a busy volume's status updates cost no rebuild.
                if self.objects.get(name) != before:
                    self._on_change()
            self.resource_version = rv or self.resource_version
        return progressed or time.monotonic() - started >= min(5.0, self._watch_timeout / 2)

    def _restart(self, reason: str) -> None:
        if self._metrics is not None:
            self._metrics.watch_restarts.labels(self.spec.plural, reason).inc()

    async def run(self) -> None:
        """List and watch until cancelled; never raises for API or network errors."""
        delays = iter(self._backoff.delays())
        while True:
            try:
                if not self.resource_version:
                    await self._list()
                progressed = await self._watch()
                # The server ended the stream (timeoutSeconds) or the connection dropped
                # cleanly: resume from the last version seen, at once if it was useful, after
                # a growing pause if it closes empty again and again.
                self._restart("closed")
                if progressed:
                    delays = iter(self._backoff.delays())
                else:
                    await asyncio.sleep(next(delays))
                continue
            except Expired:
                self._log.info(
                    "resourceVersion expired; listing again", extra={"resource": self.spec.plural}
                )
                self._restart("expired")
                self.resource_version = ""
                continue
            except (ClusterError, aiohttp.ClientError, TimeoutError, OSError) as exc:
                self._restart("error")
                if isinstance(exc, ApiStatusError) and exc.code in {401, 403}:
                    hint = "check the ServiceAccount's RBAC (get, list, watch)"
                else:
                    hint = "retrying"
                delay = next(delays)
                self._log.warning(
                    "list/watch failed",
                    extra={
                        "resource": self.spec.plural,
                        "error": str(exc) or type(exc).__name__,
                        "hint": hint,
                        "retry_in": round(delay, 2),
                    },
                )
                await asyncio.sleep(delay)


async def detect_cluster_version(client: KubeClient) -> LonghornVersion:
    """The Longhorn version line of the installed CRDs (needs `get` on two CRDs)."""
    crds = []
    for name in VERSION_CRDS:
        try:
            crds.append(await client.get(f"{CRD_PATH}/{name}"))
        except ApiStatusError as exc:
            if exc.code != 404:
                raise
    return detect_version(crds)


class ClusterFactsCache:
    """The FactsSource of a live cluster: version detection, then one cache per resource."""

    def __init__(
        self,
        client: KubeClient,
        namespace: str,
        version: LonghornVersion | None,
        *,
        metrics: Metrics | None = None,
        logger: logging.Logger | None = None,
        backoff: Backoff = Backoff(),
        watch_timeout: int = 300,
        version_poll_seconds: float = 30.0,
    ) -> None:
        self.client = client
        self.namespace = namespace
        self.version = version
        self._version_poll_seconds = version_poll_seconds
        self._metrics = metrics
        self._log = logger or logging.getLogger(__name__)
        self._backoff = backoff
        self._watch_timeout = watch_timeout
        self.caches: list[ResourceCache] = []
        self._generation = 0
        self._built: tuple[int, ClusterFacts] | None = None

    def ready(self) -> bool:
        return bool(self.caches) and all(
            c.synced.is_set() for c in self.caches if not c.spec.optional
        )

    def ages(self) -> Iterable[tuple[str, float | None]]:
        return [(c.spec.plural, c.age) for c in self.caches]

    def _changed(self) -> None:
        self._generation += 1

    def objects(self, plural: str) -> list[Mapping[str, Any]]:
        """The cached objects of one resource (none before its cache exists)."""
        return [obj for c in self.caches if c.spec.plural == plural for obj in c.objects.values()]

    def facts(self) -> ClusterFacts:
        """Complete facts once every cache synced; unknown (rules stay silent) before."""
        built = self._built
        # Every review asks: answer from the last build while nothing changed. A build
        # happens only once synced, and new caches count as a change (see run).
        if built is not None and built[0] == self._generation:
            return built[1]
        if self.version is None or not self.ready():
            return ClusterFacts()
        if self._built is None or self._built[0] != self._generation:
            objects = [obj for cache in self.caches for obj in cache.objects.values()]
            unsynced = frozenset(
                c.spec.optional for c in self.caches if c.spec.optional and not c.synced.is_set()
            )
            facts = facts_from_objects(
                objects,
                self.version,
                complete=True,
                origin="cluster",
                unlisted=unsynced,
            )
            self._built = (self._generation, facts)
        return self._built[1]

    async def _detect(self) -> LonghornVersion:
        for delay in self._backoff.delays():
            try:
                version = await detect_cluster_version(self.client)
            except (ClusterError, InvalidInput, aiohttp.ClientError, TimeoutError, OSError) as exc:
                self._log.warning(
                    "cannot detect the Longhorn version yet",
                    extra={"error": str(exc), "retry_in": round(delay, 2)},
                )
                await asyncio.sleep(delay)
                continue
            self._log.info("detected Longhorn version", extra={"longhorn_version": str(version)})
            return version
        raise AssertionError("unreachable: delays() is endless")

    async def run(self) -> None:
        """Detect the version (when not given), then follow the caches; in auto mode, start
        over when Longhorn's CRDs say another version line (an upgrade changes the CRDs
        first, then rewrites objects: the rules must be those of the new line by then)."""
        auto = self.version is None
        while True:
            if self.version is None:
                self.version = await self._detect()
            caches = asyncio.create_task(self._follow(self.version), name="caches")
            if not auto:
                await caches
                return
            try:
                version = await self._version_change(self.version)
            finally:
                await cancel_quietly(caches)
            # The old caches go before the new version shows: no reader may take them for
            # the new line's (the optional volumes cache made that window visible).
            self.caches = []
            self._changed()
            self.version = version

    async def _version_change(self, current: LonghornVersion) -> LonghornVersion:
        """Poll the CRDs until they say another version line; return it."""
        while True:
            await asyncio.sleep(self._version_poll_seconds)
            try:
                version = await detect_cluster_version(self.client)
            except (ClusterError, InvalidInput, aiohttp.ClientError, TimeoutError, OSError) as exc:
                self._log.warning("cannot check the Longhorn version", extra={"error": str(exc)})
                continue
            if version != current:
                self._log.info(
                    "Longhorn version changed; rebuilding the caches",
                    extra={"longhorn_version": str(version), "was": str(current)},
                )
                return version

    async def _follow(self, version: LonghornVersion) -> None:
        self.caches = [
            ResourceCache(
                self.client,
                spec,
                self.namespace,
                on_change=self._changed,
                metrics=self._metrics,
                logger=self._log,
                backoff=self._backoff,
                watch_timeout=self._watch_timeout,
            )
            for spec in resources_for(version)
        ]
        self._changed()  # facts built from earlier caches are stale now
        tasks = [asyncio.create_task(c.run(), name=f"watch-{c.spec.plural}") for c in self.caches]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                await cancel_quietly(task)

    async def wait_synced(self) -> None:
        while not self.ready():
            await asyncio.sleep(0.05)
