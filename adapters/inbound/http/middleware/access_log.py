"""Structured logs: one JSON object per line on stderr, for the access log `vodhub.access`."""

from __future__ import annotations

import logging
import sys
import time
from datetime import UTC, datetime
from typing import TextIO

import msgspec

from adapters.log_redaction import RedactSecrets, may_hold_secret, redact, redact_handler, redact_value
from adapters.outbound import tracing

ACCESS_LOGGER = "vodhub.access"
access_log = logging.getLogger(ACCESS_LOGGER)


def json_line(created: float, level: str, logger: str, message: str, fields: dict) -> dict:
    """What one line holds: the time, level, logger and message, then the record's fields and
    the current trace's ids."""
    return {"ts": _iso_millis(created), "level": level, "logger": logger, "message": message, **fields,
            **tracing.current_ids()}


_second: list = [-1, ""]  # the last whole second formatted, and its text: lines come many a second


def _iso_millis(created: float) -> str:
    """datetime.fromtimestamp(created, UTC).isoformat(timespec="milliseconds"), a second's text reused."""
    whole = int(created)
    if whole != _second[0]:
        _second[:] = [whole, datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")]
    return f"{_second[1]}.{int((created - whole) * 1000):03d}+00:00"


class JsonLinesFormatter(logging.Formatter):
    """The record's message and its `fields` (passed as `extra={"fields": {...}}`) as one JSON line."""

    def format(self, record: logging.LogRecord) -> str:
        line = json_line(record.created, record.levelname.lower(), record.name, record.getMessage(),
                         getattr(record, "fields", {}))
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
    def stream(self) -> TextIO:
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


def log_access(message: str, fields: dict) -> None:
    """One access line at INFO. While the logger is as configure_access_log left it (its one
    stderr handler, no filter but the redaction, done here), the line is written directly: the same JSON JsonLinesFormatter
    makes, without a LogRecord, the handler's locks and the formatter's calls, which cost as
    much as a trivial request. Anything added to the logger gets the usual logging path."""
    handlers = access_log.handlers
    if (
        len(handlers) != 1 or type(handlers[0]) is not StderrHandler or access_log.filters
        or not _only_redaction(handlers[0].filters)
        or handlers[0].level > logging.INFO or type(handlers[0].formatter) is not JsonLinesFormatter
    ):
        access_log.info("%s", message, extra={"fields": fields})
        return
    # What the handler's RedactSecrets would do to the record, done here: the line as it is when
    # nothing in it could hold a secret (one scan of the whole line, which holds every string
    # of the message and the fields verbatim), else the line of the redacted message and fields.
    created = time.time()
    line = _encode(json_line(created, "info", ACCESS_LOGGER, message, fields)).decode()
    if may_hold_secret(line):
        line = _encode(json_line(created, "info", ACCESS_LOGGER, redact(message), redact_value(fields))).decode()
    stream = sys.stderr
    stream.write(line + "\n")
    stream.flush()


_encode = msgspec.json.Encoder().encode


def _only_redaction(filters: list) -> bool:
    for each in filters:
        if type(each) is not RedactSecrets:
            return False
    return True
