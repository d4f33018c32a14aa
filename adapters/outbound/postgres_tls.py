"""eventsourcing's PostgreSQL persistence with TLS: its factory has no settings for libpq's
sslmode and certificates, so this one adds them (POSTGRES_SSLMODE, POSTGRES_SSLROOTCERT,
POSTGRES_SSLCERT, POSTGRES_SSLKEY) to every pooled connection's parameters, and how long
unused connections stay (POSTGRES_MAX_IDLE, seconds)."""

from __future__ import annotations

from typing import Any

from eventsourcing.postgres import PostgresFactory

TLS_PARAMETERS = ("sslmode", "sslrootcert", "sslcert", "sslkey")


class TlsPostgresFactory(PostgresFactory):
    def __init__(self, env: Any) -> None:
        super().__init__(env)
        tls = {name: value for name in TLS_PARAMETERS if (value := self.env.get(f"POSTGRES_{name.upper()}"))}
        # The pool is not open yet: every connection it makes gets these parameters.
        kwargs = self.datastore.pool.kwargs
        assert isinstance(kwargs, dict), "eventsourcing gives its pool a dict of connection parameters"
        kwargs.update(tls)
        # Connections beyond the pool's size close after this long unused (the pool is not open
        # yet, so its shrinking runs at this interval): with POSTGRES_POOL_SIZE=0, a process
        # holds no connection to a store it does not use, beyond the one that created its tables.
        if max_idle := self.env.get("POSTGRES_MAX_IDLE"):
            self.datastore.pool.max_idle = float(max_idle)
