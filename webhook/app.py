"""The aiohttp applications: the HTTPS review endpoint, and the plain-HTTP probe/metrics one.

The review handler is the app's `Reviewer.validate`: read the body, parse, `review.decide`,
serialise, count. Dependencies (settings, the facts source, metrics,
logger) come in through `create_app` and live in typed `web.AppKey`s; background work
(certificate reload, cluster caches) runs in `cleanup_ctx`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from longhorn_bi.engine.policy import EXEMPT_ACCOUNTS, enforced_rules, exempt_usernames
from longhorn_bi.engine.rules import RuleContext
from longhorn_bi.engine.text_redaction import clip
from longhorn_bi.webhook.facts_cache import FactsSource
from longhorn_bi.webhook.listener import Limits
from longhorn_bi.webhook.metrics import CONTENT_TYPE, Metrics
from longhorn_bi.webhook.review import (
    MAX_LOGGED,
    AdmissionRequest,
    MalformedReview,
    decide,
    parse_review,
    response_json,
)

VALIDATE_PATH = "/validate"
# The service account Longhorn's manager, its backup-target sync and its upgrade jobs run
# as (longhorn/longhorn chart/templates/daemonset-sa.yaml, preupgrade-job.yaml,
# postupgrade-job.yaml, 1.6.4-1.12.1): its writes are never checked.
LONGHORN_SERVICE_ACCOUNTS = EXEMPT_ACCOUNTS
# Larger bodies (or bodies of unknown length) are reviewed one at a time in a thread.
LARGE_BODY = 256 * 1024

JSON = "application/json"

Background = Callable[[], Coroutine[Any, Any, None]]


@dataclass(frozen=True)
class Settings:
    longhorn_namespace: str = "longhorn-system"
    limits: Limits = field(default_factory=Limits)
    # Service accounts (names, in the Longhorn namespace) or full user names
    # (system:serviceaccount:NS:NAME) whose requests pass unchecked.
    exempt_accounts: tuple[str, ...] = LONGHORN_SERVICE_ACCOUNTS
    # The generated ValidatingAdmissionPolicy runs beside (the chart's mode both): the rules
    # it enforces are left to it, so that a finding is not reported twice.
    policy_enforced: bool = False

    @property
    def max_body_bytes(self) -> int:
        return self.limits.max_body_bytes

    def exempt_usernames(self) -> frozenset[str]:
        """The request user names of `exempt_accounts`."""
        return frozenset(exempt_usernames(self.exempt_accounts, self.longhorn_namespace))


SETTINGS = web.AppKey("settings", Settings)
FACTS = web.AppKey("facts", FactsSource)
METRICS = web.AppKey("metrics", Metrics)
LOGGER = web.AppKey("logger", logging.Logger)
STOPPING = web.AppKey("stopping", asyncio.Event)


# One encoder for every answer: json.dumps with arguments builds a new one per call.
_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=_encode(body).encode(), status=status, content_type=JSON)


class Reviewer:
    """Answers one review body: parse, decide with the current rule context, count, log.

    Holds what every review needs; its `validate` is the route's handler as a bound method,
    so a request makes no app lookup. The RuleContext is made again only when the version or the facts change (a facts source
    hands out the same facts object until the cluster changes), not per review.
    """

    def __init__(
        self,
        settings: Settings,
        source: FactsSource,
        metrics_: Metrics,
        logger: logging.Logger,
    ) -> None:
        self.settings = settings
        self.metrics = metrics_
        self.logger = logger
        self._source = source
        self._current: RuleContext | None = None
        self.exempt = settings.exempt_usernames()
        # One large review at a time, read and judged off the event loop: its JSON alone
        # takes ~100 MiB and a quarter second (benchmarks/bench_hostile.py), and neither
        # may multiply with the connections nor stall the small reviews meanwhile.
        self._large = asyncio.Semaphore(1)

    def context(self) -> RuleContext | None:
        """The rule context of now, or None before the first version detection."""
        version = self._source.version
        if version is None:
            return None
        facts = self._source.facts()
        ctx = self._current
        if ctx is None or ctx.facts is not facts or ctx.version is not version:
            ctx = self._current = RuleContext(
                version=version,
                facts=facts,
                longhorn_namespace=self.settings.longhorn_namespace,
                requester_known=True,
            )
        return ctx

    def bad_request(self, reason: str, uid: str = "", status: int = 400) -> web.Response:
        self.metrics.malformed.inc()
        self.logger.warning(
            "malformed review", extra={"reason": reason, "uid": clip(uid, MAX_LOGGED)}
        )
        response = _status(status, reason)
        if status != 400:
            response.force_close()  # the body was not read, or took too long: not reused
        return response

    async def validate(self, request: web.Request) -> web.Response:
        """The POST /validate handler (a bound method: no app lookup per request)."""
        metrics_ = self.metrics
        metrics_.active += 1  # reviews in flight: the drain on SIGTERM waits for them
        started = time.perf_counter()
        limits = self.settings.limits
        try:
            declared = request.content_length
            if declared is not None and declared > limits.max_body_bytes:
                # Refused before a byte of it is read (aiohttp then reads and drops the rest
                # for at most the lingering time, and closes).
                return self.bad_request(_TOO_LARGE.format(limits.max_body_bytes), status=413)
            if declared is not None and declared <= LARGE_BODY:
                raw = await self._read(request)
                # The rest never waits: a plain call, not a second coroutine per review.
                return raw if isinstance(raw, web.Response) else self.review(raw, started)
            async with self._large:
                raw = await self._read(request)
                if isinstance(raw, web.Response):
                    return raw
                return await asyncio.to_thread(self.review, raw, started)
        finally:
            metrics_.active -= 1

    async def _read(self, request: web.Request) -> bytes | web.Response:
        """The body, or the error answer when it is too large or too slow."""
        limits = self.settings.limits
        try:
            if request.content.is_eof():
                # The whole body has arrived (as it has for nearly every review by the time the
                # handler runs): reading cannot wait, so no deadline is needed.
                return await request.read()
            async with asyncio.timeout(limits.body_seconds):
                return await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self.bad_request(_TOO_LARGE.format(limits.max_body_bytes), status=413)
        except TimeoutError:
            return self.bad_request(
                f"the body did not arrive within {limits.body_seconds:g} s", status=408
            )

    def review(self, raw: bytes, started: float) -> web.Response:
        """The HTTP answer to one review body (`started`: perf_counter at its arrival)."""
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError):
            return self.bad_request("the body is not JSON (expected an AdmissionReview)")
        try:
            review = parse_review(body)
        except MalformedReview as exc:
            return self.bad_request(str(exc))
        try:
            ctx = self.context()
            if ctx is None:
                # Only before the first version detection, when /readyz already says no and
                # the Service sends nothing here. Unchecked is not allowed: the API server's
                # failurePolicy decides (Ignore lets it through, Fail refuses it).
                return self.failed(review, started, 503, _STARTING)
            skip = enforced_rules(ctx.version) if self.settings.policy_enforced else frozenset()
            answer = decide(review, ctx, self.exempt, skip)
        except RecursionError:
            return self.bad_request("request.object is nested too deeply", review.uid)
        except Exception:
            # Fail closed, and no traceback for the caller: an HTTP error makes the API
            # server apply the failurePolicy; the log has the details.
            self.logger.exception("review failed", extra={"uid": clip(review.uid, MAX_LOGGED)})
            return self.failed(review, started, 500, _INTERNAL_ERROR)
        response = web.Response(body=response_json(answer), content_type=JSON)
        verdict = answer.verdict
        self.metrics.observe_review(
            review.kind, review.operation, verdict, time.perf_counter() - started
        )
        level = logging.INFO if verdict != "allowed" else logging.DEBUG
        if self.logger.isEnabledFor(level):
            self.logger.log(
                level,
                "review",
                extra={
                    "uid": clip(review.uid, MAX_LOGGED),
                    "kind": clip(review.kind, MAX_LOGGED),
                    "operation": review.operation,
                    "namespace": clip(review.namespace, MAX_LOGGED),
                    "object_name": clip(review.name, MAX_LOGGED),
                    "user": clip(review.username, MAX_LOGGED),
                    "dry_run": review.dry_run,
                    "verdict": verdict,
                    "rules": sorted({v.rule for v in answer.violations}),
                },
            )
        return response

    def failed(
        self, review: AdmissionRequest, started: float, status: int, reason: str
    ) -> web.Response:
        """An HTTP error for a review we could not answer: the failurePolicy decides."""
        self.metrics.observe_review(
            review.kind, review.operation, "error", time.perf_counter() - started
        )
        return _status(status, f"{reason} (review {clip(review.uid, 64)})")


def _status(code: int, message: str) -> web.Response:
    reasons = {400: "BadRequest", 408: "Timeout", 413: "RequestEntityTooLarge"}
    return _json(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "code": code,
            "reason": reasons.get(code, "InternalError"),
            "message": message,
        },
        status=code,
    )


_STARTING = "longhorn-bi: the webhook is still starting; the object was not checked"
_INTERNAL_ERROR = "longhorn-bi: internal error; the object was not checked"
_TOO_LARGE = "the body is larger than {} bytes"


REVIEWER = web.AppKey("reviewer", Reviewer)


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    if app[STOPPING].is_set():
        return web.Response(status=503, text="stopping\n")
    if not app[FACTS].ready():
        pending = [name for name, age in app[FACTS].ages() if age is None]
        detail = ", ".join(pending) if pending else "version detection"
        return web.Response(status=503, text=f"waiting for caches: {detail}\n")
    return web.Response(text="ok\n")


async def metrics(request: web.Request) -> web.Response:
    return web.Response(
        body=request.app[METRICS].exposition(), headers={"Content-Type": CONTENT_TYPE}
    )


def _state(
    app: web.Application,
    settings: Settings,
    facts_source: FactsSource,
    metrics_: Metrics,
    logger: logging.Logger,
    stopping: asyncio.Event,
) -> None:
    app[SETTINGS] = settings
    app[FACTS] = facts_source
    app[METRICS] = metrics_
    app[LOGGER] = logger
    app[STOPPING] = stopping
    app[REVIEWER] = Reviewer(settings, facts_source, metrics_, logger)


def _background(task_factory: Background) -> Callable[[web.Application], AsyncIterator[None]]:
    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(task_factory())

        def report(done: asyncio.Task[None]) -> None:
            # A background job that dies leaves /readyz false; say why in the log.
            if not done.cancelled() and done.exception() is not None:
                app[LOGGER].error("background task failed", exc_info=done.exception())

        task.add_done_callback(report)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def create_app(
    settings: Settings,
    facts_source: FactsSource,
    metrics_: Metrics,
    *,
    logger: logging.Logger | None = None,
    background: Sequence[Background] = (),
    stopping: asyncio.Event | None = None,
) -> web.Application:
    """The webhook app: POST /validate, and /healthz, /readyz, /metrics as well."""
    app = web.Application(client_max_size=settings.max_body_bytes)
    _state(
        app,
        settings,
        facts_source,
        metrics_,
        logger or logging.getLogger("longhorn_bi.webhook"),
        stopping or asyncio.Event(),
    )
    app.router.add_post(VALIDATE_PATH, app[REVIEWER].validate)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    for task in background:
        app.cleanup_ctx.append(_background(task))
    return app


def create_metrics_app(
    settings: Settings,
    facts_source: FactsSource,
    metrics_: Metrics,
    *,
    logger: logging.Logger | None = None,
    stopping: asyncio.Event | None = None,
) -> web.Application:
    """Plain HTTP for probes and Prometheus: /metrics, /healthz, /readyz (no reviews)."""
    app = web.Application()
    _state(
        app,
        settings,
        facts_source,
        metrics_,
        logger or logging.getLogger("longhorn_bi.webhook"),
        stopping or asyncio.Event(),
    )
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    return app
