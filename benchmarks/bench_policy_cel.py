"""CEL evaluation of the generated policy per object, beside the webhook's in-process review.

Same objects, same run: the AdmissionReviews of bench_webhook (an allowed restore, the same
denied, and DISTINCT distinct ones). For each object the webhook's `Reviewer.review` runs
what bench_webhook_cpu measures less the HTTP body read (parse, decide, serialise, metrics;
bench_webhook_cpu's own driver no longer runs: `validate` now reads the body under
asyncio.timeout, which needs an event loop); the policy side evaluates every
validation of both generated policies (Deny and Warn) plus their matchConditions in
cel-expr-python (Google's C++ CEL runtime), the object converted to CEL once per object.
The API server runs cel-go, not this runtime: the figure says what the expressions cost to
evaluate, not what an API server spends around them.

Run: python -m benchmarks.bench_policy_cel [--iterations N] [--rounds N]
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from benchmarks.bench_webhook import DISTINCT, _cluster_objects, admission_review
from benchmarks.common import result
from longhorn_bi.engine.facts import facts_from_objects
from longhorn_bi.engine.policy import policy_documents
from longhorn_bi.engine.versions import LonghornVersion
from longhorn_bi.webhook.app import REVIEWER, Settings, create_app
from longhorn_bi.webhook.facts_cache import StaticFacts
from longhorn_bi.webhook.metrics import Metrics
from tests.policy.runtime import PolicyRuntime


def _policy_evaluator(version: LonghornVersion) -> Callable[[dict[str, Any]], int]:
    runtime = PolicyRuntime(version)
    conditions = [
        runtime.env.compile(c["expression"])
        for c in policy_documents(version)[0]["spec"]["matchConditions"]
    ]

    def evaluate(request: dict[str, Any]) -> int:
        activation = runtime.env.Activation({"object": request["object"], "request": request})
        if not all(c.eval(activation).value() for c in conditions):
            return 0
        return len(runtime.failures(request["object"], request.get("oldObject")))

    return evaluate


def _us(call: Callable[[Any], object], inputs: Sequence[Any], n: int) -> float:
    """Mean CPU microseconds per call over `n` calls, the inputs in turn."""
    turn = itertools.islice(itertools.cycle(inputs), n)
    started = time.process_time()
    for item in turn:
        call(item)
    return (time.process_time() - started) * 1e6 / n


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    args, _ = parser.parse_known_args(sys.argv[1:] if __name__ == "__main__" else [])

    version = LonghornVersion(1, 12)
    facts = facts_from_objects(_cluster_objects(), version, complete=True, origin="cluster")
    app = create_app(Settings(), StaticFacts(version, facts), Metrics())
    reviewer = app[REVIEWER]

    def review_body(body: bytes) -> bytes:
        return reviewer.review(body, time.perf_counter()).body  # type: ignore[return-value]

    evaluate = _policy_evaluator(version)
    review = admission_review()
    # Denied on both sides: a checksum that is no SHA-512 digest (LHB103 has a CEL form;
    # bench_webhook's own denied review trips LHB202, which has none yet).
    denied = copy.deepcopy(review)
    denied["request"]["object"]["spec"]["checksum"] = "ABC"
    distinct = [admission_review(i) for i in range(DISTINCT)]
    assert evaluate(review["request"]) == 0 and evaluate(distinct[-1]["request"]) == 0
    assert evaluate(denied["request"]) > 0
    assert b'"allowed":false' in review_body(json.dumps(denied).encode())
    assert b'"allowed":true' in review_body(json.dumps(distinct[-1]).encode())
    cases = [("allowed", [review]), ("denied", [denied]), ("distinct", distinct)]
    for name, reviews in cases:
        sides: list[tuple[str, Callable[[Any], object], list[Any]]] = [
            ("webhook", review_body, [json.dumps(r).encode() for r in reviews]),
            ("cel", evaluate, [r["request"] for r in reviews]),
        ]
        for label, call, inputs in sides:
            _us(call, inputs, args.iterations // 5)  # warm up
            rounds = [_us(call, inputs, args.iterations) for _ in range(args.rounds)]
            result(
                f"policy_cel_{name}_{label}",
                objects=len(inputs),
                iterations=args.iterations,
                rounds=args.rounds,
                us_per_object_median=round(statistics.median(rounds), 1),
            )


if __name__ == "__main__":
    main()
