"""Hears other processes' appends to an event store: eventsourcing NOTIFYs the events table's
channel on every insert, and a LISTEN on its own connection turns each into a ring of the log's
signal (application/following.py), so followers act within milliseconds instead of at their
next poll."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg import sql

from application.following import Listener

logger = logging.getLogger("vodhub.following")

MAX_BACKOFF_S = 10.0


def appends_listener(recorder: PostgresApplicationRecorder) -> Listener:
    """LISTEN to the recorder's channel on a connection of its own (the pool's parameters, TLS
    included), reconnecting after an outage; the followers poll meanwhile."""
    channel = recorder.channel_name
    kwargs = recorder.datastore.pool.kwargs
    assert isinstance(kwargs, dict), "eventsourcing gives its pool a dict of connection parameters"
    parameters = {name: value for name, value in kwargs.items() if name != "row_factory"}

    def listen(ring: Callable[[], None], stopped: threading.Event) -> None:
        backoff = 0.5
        while not stopped.is_set():
            try:
                with psycopg.connect(autocommit=True, connect_timeout=5, **parameters) as connection:
                    connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                    ring()  # what was appended while nobody listened
                    backoff = 0.5
                    while not stopped.is_set():
                        for _ in connection.notifies(timeout=1.0, stop_after=1):
                            ring()
            except psycopg.Error as error:
                logger.warning("listening for appends to %s failed (%s); polling meanwhile", channel, error)
                stopped.wait(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    return listen
