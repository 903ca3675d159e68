"""Prometheus metrics of one webhook instance, in a registry of its own.

A registry per app (not prometheus_client's global one) keeps tests independent and lets
two apps live in one process.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Reviews take well under a millisecond; the API server gives up after timeoutSeconds (5).
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)

_OWN_KINDS = frozenset({"BackingImage", "BackupBackingImage"})
# (resource, seconds since last confirmed current or None before the first sync)
CacheAges = Callable[[], Iterable[tuple[str, float | None]]]


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


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reviews = Counter(
            "longhorn_bi_webhook_reviews",
            "Admission reviews answered, by object kind, operation and verdict",
            ["kind", "operation", "verdict"],
            registry=self.registry,
        )
        self.malformed = Counter(
            "longhorn_bi_webhook_malformed_reviews",
            "Requests answered 400 because the body was not a usable AdmissionReview",
            registry=self.registry,
        )
        self.latency = Histogram(
            "longhorn_bi_webhook_review_duration_seconds",
            "Time to answer one admission review, parse to serialised answer",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "longhorn_bi_webhook_reviews_in_flight",
            "Reviews being received or answered right now",
            registry=self.registry,
        )
        # Reviews in flight, for the shutdown drain and the gauge above: read at scrape
        # time, so a review costs an integer add instead of two locked gauge updates.
        self.active = 0
        self.in_flight.set_function(lambda: float(self.active))
        self._review_children: dict[tuple[str, str, str], Any] = {}
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

    def review_started(self) -> None:
        self.active += 1

    def review_ended(self) -> None:
        self.active -= 1

    def observe_review(self, kind: str, operation: str, verdict: str, started: float) -> None:
        # Unbounded label values would grow memory: only our kinds get their own label.
        label = kind if kind in _OWN_KINDS else "other"
        key = (label, operation, verdict)
        child = self._review_children.get(key)
        if child is None:  # labels() costs a lock and a lookup: keep the few children
            child = self._review_children[key] = self.reviews.labels(*key)
        child.inc()
        self.latency.observe(time.perf_counter() - started)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
