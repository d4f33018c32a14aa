"""`vodhub migrate`: create every table the processes use, as their owner, then grant each
process's own PostgreSQL role (deploy/postgres/roles.sql) only what that process does with each
table. Compose runs it once before the processes, which then start with VODHUB_DB_MIGRATE=false
and create nothing: a process's credentials can no longer alter, drop or write what it has no
business writing."""

from __future__ import annotations

import logging
from typing import Any

import msgspec
import psycopg
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.utils import Environment
from psycopg import sql

from application.accounts import Accounts
from application.resumable import ResumableUploads
from application.videos import Videos
from entrypoints.bootstrap import build_webhook_store
from entrypoints.projector import build_catalog
from entrypoints.schema_lock import libpq_url, schema_creation_lock
from entrypoints.settings import Settings, postgres_env

logger = logging.getLogger("vodhub.migrate")

EVENT_STORES = (Accounts.name, Videos.name, ResumableUploads.name)  # eventsourcing: <name>_events
SNAPSHOTS = (Videos.name,)  # <name>_snapshots
TRACKING = ("relay", "janitor")  # the log followers' positions: <name>_tracking (bootstrap.py)
ROLE_PREFIX = "vodhub_"  # the process roles are vodhub_<process> (deploy/postgres/roles.sql)

READ = "SELECT"
# eventsourcing inserts under `LOCK TABLE … IN EXCLUSIVE MODE` (notification ids in commit order),
# which PostgreSQL allows only with UPDATE, DELETE or TRUNCATE; the append-only trigger below
# refuses the updates themselves.
APPEND = "SELECT, INSERT, UPDATE"
UPSERT = "SELECT, INSERT, UPDATE"
WRITE = "SELECT, INSERT, UPDATE, DELETE"
FORGET = "SELECT, DELETE"

CATALOG_VIEWS = ("catalog_videos", "catalog_video_tags", "catalog_profiles", "catalog_video_stats",
                 "catalog_likes", "catalog_comments", "analytics_views_by_day", "analytics_co_views",
                 "analytics_history")

# What each process does with each table, read off the adapters it uses (entrypoints/*.py); a
# table it is not listed with, it cannot even read. USAGE on a table's sequence goes with INSERT.
GRANTS: dict[str, dict[str, str]] = {
    "api": {  # the use cases: accounts, uploads, videos; reads the read model; webhooks' endpoints
        "accounts_events": APPEND, "videos_events": APPEND, "uploads_events": APPEND,
        "videos_snapshots": "SELECT, INSERT",
        **dict.fromkeys(CATALOG_VIEWS, READ),
        "analytics_history": FORGET,  # a viewer clears their own history
        "webhook_endpoints": "SELECT, INSERT, DELETE", "webhook_deliveries": "SELECT, INSERT, DELETE",
    },
    "worker": {"videos_events": APPEND, "videos_snapshots": "SELECT, INSERT"},
    "relay": {  # the outbox relay, the janitor and the sweep (which re-drives stuck videos)
        "videos_events": APPEND, "videos_snapshots": "SELECT, INSERT",
        "relay_tracking": UPSERT, "janitor_tracking": UPSERT, "catalog_videos": READ,
    },
    "projector": {  # the logs into the read model, with its position in the same transaction
        "accounts_events": READ, "videos_events": READ,
        **dict.fromkeys(("catalog_videos", "catalog_video_tags", "catalog_profiles", "catalog_tracking",
                         "catalog_video_stats", "catalog_likes", "catalog_comments"), WRITE),
        # a deleted video takes its figures with it
        **dict.fromkeys(("analytics_views_by_day", "analytics_co_views", "analytics_history"), FORGET),
    },
    "notifier": {"webhook_endpoints": "SELECT, UPDATE", "webhook_deliveries": WRITE},
    "analytics": {  # views into the figures, with its Kafka offsets in the same transaction
        "catalog_video_stats": UPSERT, "analytics_views_by_day": UPSERT, "analytics_history": UPSERT,
        "analytics_co_views": WRITE, "analytics_seen_views": "SELECT, INSERT, DELETE",
        "analytics_offsets": UPSERT,
    },
}

APPEND_ONLY_FUNCTION = """
CREATE OR REPLACE FUNCTION {schema}.vodhub_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'vodhub: % is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END $$
"""
APPEND_ONLY_TRIGGER = ("CREATE OR REPLACE TRIGGER {trigger} BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION {schema}.vodhub_append_only()")
OWNED_SEQUENCES = """
SELECT sequence.relname FROM pg_class sequence
JOIN pg_depend dependency ON dependency.objid = sequence.oid AND dependency.deptype IN ('a', 'i')
WHERE sequence.relkind = 'S' AND dependency.refobjid = %s::regclass
"""


def tables() -> set[str]:
    """Every table `migrate` creates in PostgreSQL."""
    return ({f"{name}_events" for name in EVENT_STORES} | {f"{name}_snapshots" for name in SNAPSHOTS}
            | {f"{name}_tracking" for name in TRACKING} | {table for grants in GRANTS.values() for table in grants})


def migrate(settings: Settings) -> None:
    """Create every table if missing (as the role of settings.database_url, which becomes their
    owner), then, in PostgreSQL, grant the process roles that exist what GRANTS says."""
    settings = msgspec.structs.replace(settings, db_migrate=True)
    with schema_creation_lock(settings.database_url):
        _create_event_stores(settings)
        build_catalog(settings).close()
        build_webhook_store(settings).close()
        if settings.database_url:
            schema = postgres_env(settings.database_url).get("POSTGRES_SCHEMA", "public")
            with psycopg.connect(libpq_url(settings.database_url), connect_timeout=10) as connection:
                _make_event_stores_append_only(connection, schema)
                granted = grant_privileges(connection, schema)
            logger.info("migrate: tables ready; privileges granted to %s", ", ".join(granted) or "no process role")
        else:
            logger.info("migrate: tables ready in %s", settings.data_dir)


def _create_event_stores(settings: Settings) -> None:
    def factory(name: str) -> Any:
        return InfrastructureFactory.construct(Environment(name=name, env=settings.eventstore_env(name)))

    for name in EVENT_STORES:
        with factory(name) as events:
            events.application_recorder()
            if name in SNAPSHOTS:
                events.aggregate_recorder("snapshots")
    for name in TRACKING:
        with factory(name) as tracking:
            tracking.tracking_recorder()


def _make_event_stores_append_only(connection: psycopg.Connection[Any], schema: str) -> None:
    """History is never rewritten: no process may update, delete or truncate stored events, even
    with the UPDATE that eventsourcing's table lock needs."""
    connection.execute(sql.SQL(APPEND_ONLY_FUNCTION).format(schema=sql.Identifier(schema)))
    for name in EVENT_STORES:
        connection.execute(sql.SQL(APPEND_ONLY_TRIGGER).format(
            trigger=sql.Identifier(f"{name}_events_append_only"), table=sql.Identifier(schema, f"{name}_events"),
            schema=sql.Identifier(schema)))


def grant_privileges(connection: psycopg.Connection[Any], schema: str) -> list[str]:
    """Replace each existing process role's privileges on the tables with GRANTS; the roles that
    exist, granted. Without roles (`vodhub dev`, a single-role deployment) it grants nothing."""
    wanted = [ROLE_PREFIX + process for process in GRANTS]
    existing = {name for name, in connection.execute("SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", (wanted,))}
    roles = [role for role in wanted if role in existing]
    for role in roles:
        process = role.removeprefix(ROLE_PREFIX)
        for table in sorted(tables()):
            qualified = sql.Identifier(schema, table)
            sequences = [sql.Identifier(schema, name) for name, in connection.execute(
                OWNED_SEQUENCES, (f'"{schema}"."{table}"',))]
            connection.execute(sql.SQL("REVOKE ALL ON TABLE {} FROM {}").format(qualified, sql.Identifier(role)))
            for sequence in sequences:
                connection.execute(sql.SQL("REVOKE ALL ON SEQUENCE {} FROM {}").format(sequence, sql.Identifier(role)))
            privileges = GRANTS[process].get(table)
            if not privileges:
                continue
            connection.execute(sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(privileges), qualified, sql.Identifier(role)))
            if "INSERT" in privileges:
                for sequence in sequences:
                    connection.execute(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(
                        sequence, sql.Identifier(role)))
    return roles
