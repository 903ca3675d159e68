"""One JSON object per log line, with the review uid and other context as fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from longhorn_bi.engine.text_redaction import clip, redact_urls

LOGGER_NAME = "longhorn_bi.webhook"
# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


# A logged string field (and a traceback) is cut here: the request chooses some of them.
MAX_FIELD = 1024
MAX_TRACEBACK = 8192


def _field(value: Any) -> Any:
    if isinstance(value, str):
        return clip(redact_urls(value), MAX_FIELD)
    return value


class JsonFormatter(logging.Formatter):
    """Every string field bounded and without URL credentials, whoever logs it."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": _field(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = _field(value)
        if record.exc_info:
            trace = redact_urls(self.formatException(record.exc_info))
            entry["exc"] = clip(trace, MAX_TRACEBACK)
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(level: str = "info", stream: TextIO | None = None) -> logging.Logger:
    """JSON lines on `stream` (stderr) for our logger and aiohttp's."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER_NAME, "aiohttp"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False
    # aiohttp's access log is one line per review: noise at info level.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return logging.getLogger(LOGGER_NAME)


def get_logger(suffix: str = "") -> logging.Logger:
    return logging.getLogger(f"{LOGGER_NAME}.{suffix}" if suffix else LOGGER_NAME)
