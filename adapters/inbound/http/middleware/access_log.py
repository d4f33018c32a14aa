"""Structured logs: one JSON object per line on stderr, for the access log `vodhub.access`."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import msgspec

from adapters.log_redaction import redact_handler
from adapters.outbound import tracing

ACCESS_LOGGER = "vodhub.access"
access_log = logging.getLogger(ACCESS_LOGGER)


class JsonLinesFormatter(logging.Formatter):
    """The record's message and its `fields` (passed as `extra={"fields": {...}}`) as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
            **tracing.current_ids(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:  # formatted (and redacted) by RedactSecrets
            line["exception"] = record.exc_text
        return msgspec.json.encode(line).decode()


class StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (as logging.lastResort does), so a
    replaced stderr (test capture, a reopened file) never leaves it writing to a closed one."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def configure_access_log() -> None:
    """Send access lines to stderr as JSON, once, and not also through the root logger's text format."""
    if any(isinstance(handler, StderrHandler) for handler in access_log.handlers):
        return
    handler = redact_handler(StderrHandler())
    handler.setFormatter(JsonLinesFormatter())
    access_log.addHandler(handler)
    access_log.propagate = False
    if access_log.level == logging.NOTSET:
        access_log.setLevel(logging.INFO)
