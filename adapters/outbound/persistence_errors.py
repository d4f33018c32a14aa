"""The databases' own exceptions, translated into application errors where they leave an adapter.

eventsourcing (the event store, over psycopg or sqlite3) and SQLAlchemy (the read models) each
raise their own classes; past this module the use cases and the HTTP error table see only
application/errors.py. The original stays the __cause__, which the breakers read."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError, RecordConflictError
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext
from sqlalchemy.exc import DBAPIError

from application.errors import ConcurrentChange, Unavailable

UNAVAILABLE = "a backend is unavailable; try again shortly"
RECORDER_METHODS = ("insert_events", "select_events", "select_notifications", "max_notification_id",
                    "insert_tracking", "max_tracking_id", "has_tracking_id")


def event_store_error(error: Exception) -> Exception:
    """What an event store error means to the use cases: a lost race, an outage, or itself."""
    if isinstance(error, RecordConflictError) and not isinstance(error, ConcurrentChange):
        return ConcurrentChange()
    if isinstance(error, InterfaceError | OperationalError):
        return Unavailable(UNAVAILABLE)
    return error


def translate_event_store_errors(recorder: Any) -> None:
    """Route a recorder's calls (outside eventsourcing's own retries) through event_store_error."""
    for name in RECORDER_METHODS:
        method = getattr(recorder, name, None)
        if method is not None and not getattr(method, "_vodhub_translated", False):
            setattr(recorder, name, _translated(method))


def _translated(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def translated(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except Exception as error:
            translation = event_store_error(error)
            if translation is error:
                raise
            raise translation from error

    translated._vodhub_translated = True  # type: ignore[attr-defined]
    return translated


def translate_sql_errors(engine: Engine) -> None:
    """Whatever a read model's database refuses (it is away, full, locked) is Unavailable: the
    request was fine and may succeed in a moment. The pool's pre-ping keeps its own errors."""
    event.listen(engine, "handle_error", _sql_error)


def _sql_error(context: ExceptionContext) -> None:
    error = context.sqlalchemy_exception
    if context.is_pre_ping or not isinstance(error, DBAPIError):
        return
    raise Unavailable(UNAVAILABLE) from error
