"""`serve`: the HTTPS review server and the plain-HTTP metrics server in one process.

SIGTERM (and SIGINT) first make /readyz fail, then stop accepting connections and wait up to
`drain_seconds` for reviews in flight, so a rolling update loses no review.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from longhorn_bi.engine.errors import InvalidInput
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.webhook.app import (
    LONGHORN_SERVICE_ACCOUNTS,
    Settings,
    create_app,
    create_metrics_app,
)
from longhorn_bi.webhook.facts_cache import ClusterFactsCache
from longhorn_bi.webhook.kube import KubeClient, load_auth
from longhorn_bi.webhook.listener import BoundedTLSSite, Limits
from longhorn_bi.webhook.logging_json import get_logger
from longhorn_bi.webhook.metrics import Metrics
from longhorn_bi.webhook.tls import ReloadingTLS, ReloadResult

# Seconds aiohttp waits, after the drain, for handlers still running before it cancels them.
SHUTDOWN_GRACE = 3.0


@dataclass(frozen=True)
class ServeOptions:
    cert_file: Path
    key_file: Path
    host: str = "0.0.0.0"
    port: int = 9443
    metrics_port: int = 8080
    kubeconfig: Path | None = None
    longhorn_namespace: str = "longhorn-system"
    longhorn_version: LonghornVersion | None = None  # None: detect from the CRDs
    cert_poll_seconds: float = 5.0
    drain_seconds: float = 20.0
    shutdown_delay_seconds: float = 3.0
    watch_timeout: int = 300
    limits: Limits = field(default_factory=Limits)
    exempt_accounts: tuple[str, ...] = LONGHORN_SERVICE_ACCOUNTS
    policy_enforced: bool = False


async def _drain(metrics: Metrics, options: ServeOptions) -> None:
    """Keep serving while the Service drops this pod (readyz already fails), then until no
    review is in flight. aiohttp's own shutdown ignores bytes that arrive once it closes a
    connection, so a review whose body is still arriving must finish before that."""
    await asyncio.sleep(options.shutdown_delay_seconds)
    deadline = time.monotonic() + options.drain_seconds
    while metrics.active > 0 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)


async def serve(options: ServeOptions) -> None:
    log = get_logger()
    tls = ReloadingTLS(options.cert_file, options.key_file)
    auth = await asyncio.to_thread(load_auth, options.kubeconfig)
    metrics = Metrics()
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)

    def on_reload(result: ReloadResult) -> None:
        metrics.cert_reloads.labels("ok" if result.changed else "error").inc()

    async with KubeClient(auth) as client:
        facts = ClusterFactsCache(
            client,
            options.longhorn_namespace,
            options.longhorn_version,
            metrics=metrics,
            logger=log,
            watch_timeout=options.watch_timeout,
        )
        metrics.track_caches(facts.ages)
        # The last `verify` result per backup, from the annotations the cache already holds.
        metrics.track_verify(
            lambda: facts.objects("backupbackingimages"), options.longhorn_namespace
        )
        settings = Settings(
            longhorn_namespace=options.longhorn_namespace,
            limits=options.limits,
            exempt_accounts=options.exempt_accounts,
            policy_enforced=options.policy_enforced,
        )
        app = create_app(
            settings,
            facts,
            metrics,
            logger=log,
            stopping=stopping,
            background=[facts.run, lambda: tls.watch(options.cert_poll_seconds, log, on_reload)],
        )
        probes = create_metrics_app(settings, facts, metrics, logger=log, stopping=stopping)
        # The drain has already waited for reviews in flight: what is left (idle or hostile
        # connections) gets a short grace, so the whole stop fits the pod's
        # terminationGracePeriodSeconds (shutdown delay + drain + 10 s in the chart).
        runner = web.AppRunner(
            app,
            shutdown_timeout=SHUTDOWN_GRACE,
            access_log=None,
            **options.limits.handler_args(),
        )
        # Plain HTTP, no TLS buffers: the same header and idle deadlines are enough there.
        probe_runner = web.AppRunner(
            probes, shutdown_timeout=1.0, access_log=None, **options.limits.handler_args()
        )
        await runner.setup()
        await probe_runner.setup()
        try:
            try:
                await BoundedTLSSite(
                    runner, options.host, options.port, tls.context, options.limits
                ).start()
                await web.TCPSite(probe_runner, options.host, options.metrics_port).start()
            except OSError as exc:
                raise InvalidInput(
                    f"--port/--metrics-port: cannot listen on {options.host}: {exc.strerror or exc}",
                    hint="choose free ports",
                ) from exc
            # Startup objects (the kubernetes client's modules above all) live for good: keep
            # them out of every garbage collection the reviews' allocations trigger.
            gc.freeze()
            log.info(
                "serving",
                extra={
                    # The bound ports: differ from the options when those are 0.
                    "port": runner.addresses[0][1],
                    "metrics_port": probe_runner.addresses[0][1],
                    "longhorn_namespace": options.longhorn_namespace,
                    "longhorn_version": str(options.longhorn_version or "auto"),
                },
            )
            await stopping.wait()
            log.info(
                "stopping: draining reviews in flight",
                extra={
                    "shutdown_delay_seconds": options.shutdown_delay_seconds,
                    "drain_seconds": options.drain_seconds,
                },
            )
            await _drain(metrics, options)
        finally:
            await runner.cleanup()
            await probe_runner.cleanup()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        log.info("stopped")
