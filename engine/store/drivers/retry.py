"""What the HTTP drivers share: credentials kept out of every message, and the retry loop.

A driver classifies each failure of a call; this module only repeats the transient ones
with capped exponential backoff and jitter, and makes sure no message carries a secret.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from longhorn_bi.engine.errors import LonghornBIError

T = TypeVar("T")
ATTEMPTS = 6
BASE_DELAY = 0.05
MAX_DELAY = 2.0


def redact(text: str, secret_vars: Iterable[str]) -> str:
    """Replace the value of every named environment variable in `text` with '***'.

    Values shorter than 4 characters are left alone: replacing them would garble the text
    without hiding anything worth hiding."""
    for var in secret_vars:
        value = os.environ.get(var, "")
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text


class Transient(Exception):
    """Raised by a classifier: the call may succeed if it is repeated."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def with_retries(
    fn: Callable[[], T],
    classify: Callable[[BaseException], LonghornBIError | Transient | None],
    give_up: Callable[[str], LonghornBIError],
    attempts: int = ATTEMPTS,
) -> T:
    """Call `fn`; `classify` turns a failure into a final error, a Transient, or None (not
    ours: re-raised). After `attempts` transient failures, `give_up(last message)`."""
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except Exception as exc:
            verdict = classify(exc)
            if verdict is None:
                raise
            if isinstance(verdict, LonghornBIError):
                raise verdict from None
            if attempt == attempts:
                raise give_up(verdict.message) from None
        time.sleep(min(MAX_DELAY, BASE_DELAY * 2**attempt) * random.uniform(0.5, 1.0))
    raise AssertionError("unreachable")
