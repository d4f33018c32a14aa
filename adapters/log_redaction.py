"""Secrets never reach a log line: a filter on every log handler rewrites what each record
would print. Defence in depth: vodhub logs no body and no header, but a path, an exception
message or a library's debug line can still carry one.

Redacted: signed media tokens (`/media/t/{token}/…`), anything shaped like a JWT (access and
media tokens), `Bearer …` credentials, webhook signing secrets (`whsec_…`), refresh tokens
and other `token`/`secret`/`password` values written as JSON or query fields, and passwords
in URLs (`scheme://user:password@host`)."""

from __future__ import annotations

import logging
import re
from typing import Any

REDACTED = "[redacted]"

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(/media/t/)[^/\s\"']+"), r"\1" + REDACTED),
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), REDACTED),  # a JWT: base64url of '{"' then two more parts
    (re.compile(r"(?i)\b(bearer|basic)\s+[\w\-.~+/=]+"), r"\1 " + REDACTED),
    (re.compile(r"\bwhsec_[A-Za-z0-9+/=_-]+"), "whsec_" + REDACTED),
    # "refresh_token": "…", refresh_token=…, secret: … (JSON, query strings, reprs)
    (re.compile(r"""(?i)(["']?\b[\w-]*(?:token|secret|password|authorization)["']?\s*[:=]\s*["']?)[^"'&\s,;}]+"""),
     r"\1" + REDACTED),
    (re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
)


# One scan that every rule's match needs to pass: most lines (an access line's path, a status)
# hold none of these, and then no rule runs at all.
_MAYBE = re.compile(r"(?i)/media/t/|eyJ|bearer|basic|whsec_|token|secret|password|authorization|://")
# The same words, for ASCII text: lower-cased substring tests are several times cheaper than
# the case-insensitive alternation, which tries every branch at every position. (Not for other
# text: Unicode case folding lets the regex match, e.g., "ſecret", which lower() keeps apart.)
_MAYBE_WORDS = ("/media/t/", "eyj", "bearer", "basic", "whsec_", "token", "secret", "password", "authorization", "://")


def may_hold_secret(text: str) -> bool:
    """Whether redact could change text. Also true of any string held verbatim in text (a
    field's value inside a JSON line: JSON escapes only quotes, backslashes and control
    characters, none of which these words contain)."""
    if text.isascii():
        lowered = text.lower()
        for word in _MAYBE_WORDS:
            if word in lowered:
                return True
        return False
    return _MAYBE.search(text) is not None


def redact(text: str) -> str:
    """text with every secret it holds replaced by [redacted]."""
    if not may_hold_secret(text):
        return text
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any) -> Any:
    """A log field (a string, or dicts and lists of them) with its secrets redacted."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


class RedactSecrets(logging.Filter):
    """Rewrites the record in place: its message (arguments merged in), its structured
    `fields` and its traceback text. Never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        fields = getattr(record, "fields", None)
        if fields:
            record.fields = redact_value(fields)
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None  # formatters print exc_text instead of formatting it again
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def redact_handler(handler: logging.Handler) -> logging.Handler:
    """Add the filter to handler, once."""
    if not any(isinstance(existing, RedactSecrets) for existing in handler.filters):
        handler.addFilter(RedactSecrets())
    return handler


def redact_all_handlers() -> None:
    """Every handler the root logger and the named loggers have now (call after configuring)."""
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    for logger in loggers:
        for handler in logger.handlers:
            redact_handler(handler)
