"""Processes starting together all create their tables if missing; PostgreSQL's CREATE TABLE
IF NOT EXISTS still races on its catalog, so table creation is serialised with an advisory
lock held while a process builds its stores. SQLite files need nothing of the kind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import psycopg

SCHEMA_LOCK_ID = 0x766F64687562  # "vodhub"


@contextmanager
def schema_creation_lock(database_url: str | None) -> Iterator[None]:
    if not database_url:
        yield
        return
    parts = urlsplit(database_url)
    with psycopg.connect(urlunsplit(parts._replace(query="")), autocommit=True, connect_timeout=10) as connection:
        connection.execute("select pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        try:
            yield
        finally:
            connection.execute("select pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))
