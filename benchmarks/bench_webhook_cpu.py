"""CPU per review of the webhook's handler path, in process, beside the ceiling's handler.

wrk figures on a shared 2-core machine move with the neighbours' load; process CPU time
does not. This drives both aiohttp handlers (the real `Reviewer.validate` and the bench's bare
ceiling) with the AdmissionReview bytes of bench_webhook, without sockets or TLS: parse ->
decide -> serialise -> metrics -> web.Response. The calls of one measurement run in one event
loop, since the review path sets a body deadline (asyncio.timeout) around the read.

Run: python -m benchmarks.bench_webhook_cpu [--iterations N] [--rounds N] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import Any

from aiohttp import web

from benchmarks.bench_webhook import DISTINCT, _cluster_objects, admission_review, ceiling_handler
from benchmarks.common import result
from longhorn_bi.engine.facts import facts_from_objects
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.webhook.app import REVIEWER, Settings, create_app
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.metrics import Metrics

Handler = Callable[[Any], Coroutine[Any, Any, web.Response]]


class _Request:
    """What the handlers use of a web.Request: the app and the body."""

    def __init__(self, app: web.Application, body: bytes) -> None:
        self.app = app
        self._body = body
        self.content_length = len(body)  # the webhook refuses an oversized body by it
        self.content = self  # the stream, which has all of the body (see is_eof)

    def is_eof(self) -> bool:
        return True  # as in the server for a review's body, which arrives whole

    async def read(self) -> bytes:
        return self._body


def _run(handler: Handler, request: _Request) -> web.Response:
    return asyncio.run(handler(request))


async def _calls(handler: Handler, requests: Iterable[_Request]) -> None:
    for request in requests:
        await handler(request)


def _us_per_call(handler: Handler, requests: Sequence[_Request], iterations: int) -> float:
    """Mean CPU microseconds per call over `iterations` calls, the requests in turn, all in
    one event loop (the review path sets a body deadline, which needs a running loop)."""
    turn = itertools.islice(itertools.cycle(requests), iterations)
    started = time.process_time()
    asyncio.run(_calls(handler, turn))
    return (time.process_time() - started) * 1e6 / iterations


def _denied(review: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(review)
    out["request"]["object"]["spec"]["sourceParameters"]["concurrent-limit"] = "0"
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile the webhook path")
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])

    version = LonghornVersion(1, 12)
    facts = facts_from_objects(_cluster_objects(), version, complete=True, origin="cluster")
    app = create_app(Settings(), StaticFacts(version, facts), Metrics())
    validate = app[REVIEWER].validate
    review = admission_review()
    allowed = _Request(app, json.dumps(review).encode())
    denied = _Request(app, json.dumps(_denied(review)).encode())
    distinct = [_Request(app, json.dumps(admission_review(i)).encode()) for i in range(DISTINCT)]
    # The answers must be the ones bench_webhook checks: a clean allow and a deny.
    assert b'"allowed":true' in _run(validate, allowed).body  # type: ignore[operator]
    assert b'"allowed":false' in _run(validate, denied).body  # type: ignore[operator]
    assert b'"allowed":true' in _run(validate, distinct[-1]).body  # type: ignore[operator]

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(_us_per_call, validate, distinct, args.iterations)
        pstats.Stats(profiler).sort_stats(
            *(sys.argv[sys.argv.index("--sort") + 1],) if "--sort" in sys.argv else ("tottime",)
        ).print_stats(45)
        return

    cases: list[tuple[str, Handler, list[_Request]]] = [
        ("ceiling", ceiling_handler, [allowed]),
        ("webhook", validate, [allowed]),
        ("webhook_denied", validate, [denied]),
        # 4096 distinct reviews in turn, as bench_webhook --bodies distinct posts them.
        ("ceiling_distinct", ceiling_handler, distinct),
        ("webhook_distinct", validate, distinct),
    ]
    for name, handler, requests in cases:
        _us_per_call(handler, requests, args.iterations // 5)  # warm up
        rounds = [_us_per_call(handler, requests, args.iterations) for _ in range(args.rounds)]
        result(
            f"webhook_cpu_{name}",
            iterations=args.iterations,
            rounds=args.rounds,
            body_bytes=len(requests[0]._body),
            us_per_request_median=round(statistics.median(rounds), 1),
            us_per_request_min=round(min(rounds), 1),
        )


if __name__ == "__main__":
    main()
