"""Prometheus metrics of one webhook instance, in a registry of its own.

A registry per app (not prometheus_client's global one) keeps tests independent and lets
two apps live in one process.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from longhorn_bi.engine.scrub.outcome import (
    LABELS,
    OK_HELP,
    OK_METRIC,
    TIME_HELP,
    TIME_METRIC,
    recorded,
)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Reviews take well under a millisecond; the API server gives up after timeoutSeconds (5).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

# The `le` labels prometheus_client writes for these bounds (repr of each float), then +Inf.
_LE_LABELS = (*(repr(float(bound)) for bound in LATENCY_BUCKETS), "+Inf")
_OWN_KINDS = frozenset({"BackingImage", "BackupBackingImage"})
# (resource, seconds since last confirmed current or None before the first sync)
CacheAges = Callable[[], Iterable[tuple[str, float | None]]]
# The cached BackupBackingImages, read at scrape time
Backups = Callable[[], Iterable[Mapping[str, Any]]]


class _CacheCollector(Collector):
    def __init__(self, ages: CacheAges) -> None:
        self._ages = ages

    def collect(self) -> Iterator[GaugeMetricFamily]:
        age = GaugeMetricFamily(
            "longhorn_bi_webhook_cache_age_seconds",
            "Seconds since the cache of a resource was last known current (list, watch event "
            "or bookmark)",
            labels=["resource"],
        )
        synced = GaugeMetricFamily(
            "longhorn_bi_webhook_cache_synced",
            "1 when the cache of a resource has completed its first list",
            labels=["resource"],
        )
        for resource, seconds in self._ages():
            synced.add_metric([resource], 0.0 if seconds is None else 1.0)
            if seconds is not None:
                age.add_metric([resource], seconds)
        yield age
        yield synced


class _VerifyCollector(Collector):
    """The last verify result per backup, from the annotations `verify` writes on the
    BackupBackingImages the facts cache already watches: no API call per scrape, and the
    same series as `verify --textfile`."""

    def __init__(self, backups: Backups, namespace: str) -> None:
        self._backups = backups
        self._namespace = namespace

    def collect(self) -> Iterator[GaugeMetricFamily]:
        passed = GaugeMetricFamily(OK_METRIC, OK_HELP, labels=LABELS)
        stamps = GaugeMetricFamily(TIME_METRIC, TIME_HELP, labels=LABELS)
        for obj in self._backups():
            meta = obj.get("metadata")
            meta = meta if isinstance(meta, Mapping) else {}
            notes = meta.get("annotations")
            last = recorded(notes) if isinstance(notes, Mapping) else None
            name = meta.get("name")
            if last is None or not isinstance(name, str):
                continue
            labels = [self._namespace, name]
            passed.add_metric(labels, 1.0 if last[0] else 0.0)
            stamps.add_metric(labels, last[1])
        yield passed
        yield stamps


class _ReviewStats(Collector):
    """Reviews by (kind, operation, verdict) and their latency, as plain numbers.

    prometheus_client's Counter and Histogram take a lock per update (three per review);
    every review is counted on the event loop's thread, and scrapes read there too, so
    integers and a bisect into the bucket bounds do the same job for a fraction of the CPU.
    """

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str, str], int] = {}
        self.buckets = [0] * (len(LATENCY_BUCKETS) + 1)  # the last one: above every bound
        self.total_seconds = 0.0

    def observe(self, kind: str, operation: str, verdict: str, seconds: float) -> None:
        # Unbounded label values would grow memory: only our kinds get their own label.
        key = (kind if kind in _OWN_KINDS else "other", operation, verdict)
        self.counts[key] = self.counts.get(key, 0) + 1
        self.buckets[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.total_seconds += seconds

    def collect(self) -> Iterator[CounterMetricFamily | HistogramMetricFamily]:
        reviews = CounterMetricFamily(
            "longhorn_bi_webhook_reviews",
            "Admission reviews answered, by object kind, operation and verdict",
            labels=["kind", "operation", "verdict"],
        )
        for key, count in sorted(self.counts.items()):
            reviews.add_metric(list(key), count)
        yield reviews
        cumulative, buckets = 0, []
        for bound, count in zip(_LE_LABELS, self.buckets, strict=True):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "longhorn_bi_webhook_review_duration_seconds",
            "Time to answer one admission review, parse to serialised answer",
            buckets=buckets,
            sum_value=self.total_seconds,
        )


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reviews = _ReviewStats()
        self.registry.register(self.reviews)
        # observe_review(kind, operation, verdict, seconds): the stats' own method, so that
        # counting a review is one call.
        self.observe_review = self.reviews.observe
        self.malformed = Counter(
            "longhorn_bi_webhook_malformed_reviews",
            "Requests answered 400 because the body was not a usable AdmissionReview",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "longhorn_bi_webhook_reviews_in_flight",
            "Reviews being received or answered right now",
            registry=self.registry,
        )
        # Reviews in flight, for the shutdown drain and the gauge above: the handler adds and
        # subtracts 1, and the gauge reads it at scrape time (no locked update per review).
        self.active = 0
        self.in_flight.set_function(lambda: float(self.active))
        self.cert_reloads = Counter(
            "longhorn_bi_webhook_certificate_reloads",
            "Serving certificate reloads, by result",
            ["result"],
            registry=self.registry,
        )
        self.watch_restarts = Counter(
            "longhorn_bi_webhook_watch_restarts",
            "Watch streams restarted, by resource and reason",
            ["resource", "reason"],
            registry=self.registry,
        )

    def track_caches(self, ages: CacheAges) -> None:
        self.registry.register(_CacheCollector(ages))

    def track_verify(self, backups: Backups, namespace: str) -> None:
        self.registry.register(_VerifyCollector(backups, namespace))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
