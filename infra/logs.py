"""Logging for the CLI: plain text for people, or one JSON object per line (``CITYHUB_LOG_FORMAT=json``) for
log shippers. Every line logged while landing carries the dataset, the run id and the run's offset slice — set
once per run with :func:`landing_context`, so no call site can forget them."""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

CONTEXT: contextvars.ContextVar[dict | None] = contextvars.ContextVar("cityhub_log_context", default=None)
FIELDS = ("dataset", "run_id", "slice", "partition", "offsets")


@contextmanager
def landing_context(**fields: object) -> Iterator[None]:
    token = CONTEXT.set({**(CONTEXT.get() or {}), **fields})
    try:
        yield
    finally:
        CONTEXT.reset(token)


def add_context(**fields: object) -> None:
    """Add fields to the current context (e.g. the slice once it is planned)."""
    CONTEXT.set({**(CONTEXT.get() or {}), **fields})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in (CONTEXT.get() or {}).items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({key: getattr(record, key) for key in FIELDS if hasattr(record, key)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = " ".join(f"{key}={getattr(record, key)}" for key in FIELDS if hasattr(record, key))
        return f"{text} [{context}]" if context else text


def setup(verbose: bool, fmt: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("kafka", "httpx", "great_expectations"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # kafka-python warns whenever its IO thread waits while a batch is decoded: expected, not actionable
    logging.getLogger("kafka.net.selector").setLevel(logging.ERROR)
