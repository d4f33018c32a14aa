"""Processes starting together all create their tables if missing; PostgreSQL's CREATE TABLE
IF NOT EXISTS still races on its catalog, so table creation is serialised with an advisory
lock held while a process builds its stores. SQLite files need nothing of the kind."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import parse_qsl, urlencode, urlsplit

import psycopg

SCHEMA_LOCK_ID = 0x766F64687562  # "vodhub"


@contextmanager
def schema_creation_lock(database_url: str | None) -> Iterator[None]:
    if not database_url:
        yield
        return
    with psycopg.connect(libpq_url(database_url), autocommit=True, connect_timeout=10) as connection:
        connection.execute("select pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        try:
            yield
        finally:
            connection.execute("select pg_advisory_unlock(%s)", (SCHEMA_LOCK_ID,))


def libpq_url(database_url: str) -> str:
    """The URL without vodhub's own `schema` parameter, which libpq would refuse; its TLS
    parameters (sslmode, sslrootcert, …) stay."""
    parts = urlsplit(database_url)
    query = [(name, value) for name, value in parse_qsl(parts.query) if name != "schema"]
    return parts._replace(query=urlencode(query)).geturl()
