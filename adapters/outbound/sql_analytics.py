"""The analytics consumer's writer in SQL: a batch of views and the consumer's offsets commit in
one transaction, so a redelivered message (a restart, a rebalance) is never counted twice."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Connection, Date, Uuid, bindparam, select, text
from sqlalchemy.types import TypeEngine

from adapters.outbound.sql_catalog import SqlCatalog, UtcDateTime
from application.analytics import CO_VIEWS_KEPT, Position, ViewEffects, plan_views
from application.integration_events import VideoViewed

SEEN_KEPT = timedelta(days=2)  # a republished view arrives within minutes; ids older than this are dropped
PRUNE_EVERY = 500  # batches
# How SQLAlchemy stores each kind of value on SQLite (UUIDs as hex text, datetimes naive UTC).
SQLITE_TYPES: dict[str, TypeEngine[Any]] = {"uuid": Uuid(), "bigint": BigInteger(), "date": Date(), "timestamptz": UtcDateTime()}


class SqlAnalytics:
    def __init__(self, catalog: SqlCatalog) -> None:
        self.catalog = catalog
        self.tables = catalog.audience
        self._batches = 0
        self._lock = threading.Lock()

    def record_views(self, consumer: str, views: Sequence[tuple[Position, VideoViewed | None]]) -> int:
        if not views:
            return 0
        with self.catalog.engine.begin() as conn:
            fresh = self._past_offsets(conn, consumer, views)
            new_views = self._unseen(conn, [view for view in fresh if view is not None])
            if new_views:
                effects = plan_views(new_views, self._histories(conn, new_views))
                self._write(conn, effects)
            self._prune(conn)
        return len(new_views)

    def _past_offsets(
        self, conn: Connection, consumer: str, views: Sequence[tuple[Position, VideoViewed | None]]
    ) -> list[VideoViewed | None]:
        """The messages past their partition's recorded offset; the offsets move to the batch's last."""
        offsets = self.tables.offsets
        recorded: dict[tuple[str, int], int] = {}
        for topic, partition in {(position.topic, position.partition) for position, _ in views}:
            statement = select(offsets.c.offset).where(
                offsets.c.consumer == consumer, offsets.c.topic == topic, offsets.c.partition == partition)
            if self.catalog.on_postgres:
                statement = statement.with_for_update()
            recorded[(topic, partition)] = conn.execute(statement).scalar_one_or_none() or -1
        fresh = [view for position, view in views if position.offset > recorded[(position.topic, position.partition)]]
        last: dict[tuple[str, int], int] = {}
        for position, _ in views:
            key = (position.topic, position.partition)
            last[key] = max(last.get(key, -1), position.offset)
        for (topic, partition), offset in last.items():
            if offset > recorded[(topic, partition)]:
                insert = self.catalog._insert(offsets).values(consumer=consumer, topic=topic, partition=partition,
                                                              offset=offset)
                conn.execute(insert.on_conflict_do_update(
                    index_elements=[offsets.c.consumer, offsets.c.topic, offsets.c.partition],
                    set_={"offset": insert.excluded.offset}))
        return fresh

    def _unseen(self, conn: Connection, views: list[VideoViewed]) -> list[VideoViewed]:
        """Views whose event id was not counted before (nor earlier in this batch); they are remembered."""
        if not views:
            return []
        if self.catalog.on_postgres:  # one statement, arrays for parameters
            ids = [view.event_id for view in views]
            new = {row[0] for row in conn.execute(text(
                "INSERT INTO analytics_seen_views (event_id, seen_at) "
                "SELECT * FROM unnest(CAST(:ids AS varchar[]), CAST(:at AS timestamptz[])) "
                "ON CONFLICT DO NOTHING RETURNING event_id"), {"ids": ids, "at": [view.viewed_at for view in views]})}
            fresh = []
            for view in views:  # one per id, also within the batch
                if view.event_id in new:
                    new.discard(view.event_id)
                    fresh.append(view)
            return fresh
        seen = self.tables.seen_views
        ids = list({view.event_id for view in views})
        known = {row[0] for row in conn.execute(select(seen.c.event_id).where(seen.c.event_id.in_(ids)))}
        unseen: list[VideoViewed] = []
        for view in views:
            if view.event_id not in known:
                known.add(view.event_id)
                unseen.append(view)
        if unseen:
            conn.execute(seen.insert(), [{"event_id": view.event_id, "seen_at": view.viewed_at} for view in unseen])
        return unseen

    def _histories(self, conn: Connection, views: list[VideoViewed]) -> dict[UUID, dict[UUID, datetime]]:
        """The batch's viewers' histories: what plan_views needs (their latest videos, and whether
        they watched the batch's videos before) in one indexed query."""
        history = self.tables.history
        users = list({UUID(view.user_id) for view in views})
        histories: dict[UUID, dict[UUID, datetime]] = {}
        if self.catalog.on_postgres:
            rows = conn.execute(text("SELECT user_id, video_id, viewed_at FROM analytics_history "
                                     "WHERE user_id = ANY(CAST(:users AS uuid[]))"), {"users": users})
        else:
            rows = conn.execute(
                select(history.c.user_id, history.c.video_id, history.c.viewed_at).where(history.c.user_id.in_(users)))
        for user_id, video_id, viewed_at in rows:
            histories.setdefault(user_id, {})[video_id] = viewed_at
        return histories

    def _write(self, conn: Connection, effects: ViewEffects) -> None:
        self._upsert(conn, "catalog_video_stats", {"video_id": "uuid", "view_count": "bigint"}, ["video_id"],
                     "view_count = t.view_count + excluded.view_count", list(effects.views.items()))
        self._upsert(conn, "analytics_views_by_day", {"video_id": "uuid", "day": "date", "views": "bigint"},
                     ["video_id", "day"], "views = t.views + excluded.views",
                     [(video, day, n) for (video, day), n in effects.per_day.items()])
        self._upsert(conn, "analytics_co_views", {"video_id": "uuid", "other_id": "uuid", "viewers": "bigint"},
                     ["video_id", "other_id"], "viewers = t.viewers + excluded.viewers",
                     [(a, b, n) for (a, b), n in effects.co_views.items()])
        self._upsert(conn, "analytics_history", {"user_id": "uuid", "video_id": "uuid", "viewed_at": "timestamptz"},
                     ["user_id", "video_id"],
                     "viewed_at = CASE WHEN excluded.viewed_at > t.viewed_at THEN excluded.viewed_at ELSE t.viewed_at END",
                     [(user, video, at) for (user, video), at in effects.watched.items()])

    def _upsert(
        self, conn: Connection, table: str, columns: dict[str, str], keys: list[str], update: str, rows: list[tuple],
    ) -> None:
        """One statement for all rows: on PostgreSQL from arrays (unnest), so a batch costs one round
        trip and one parse whatever its size; on SQLite, in process, executemany is cheap already."""
        if not rows:
            return
        names = ", ".join(f'"{name}"' for name in columns)
        conflict = f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {update}"
        if self.catalog.on_postgres:
            arrays = ", ".join(f"CAST(:{name} AS {kind}[])" for name, kind in columns.items())
            statement = f"INSERT INTO {table} AS t ({names}) SELECT * FROM unnest({arrays}) {conflict}"
            conn.execute(text(statement), {name: [row[n] for row in rows] for n, name in enumerate(columns)})
            return
        values = ", ".join(f":{name}" for name in columns)
        insert = text(f"INSERT INTO {table} AS t ({names}) VALUES ({values}) {conflict}").bindparams(
            *(bindparam(name, type_=SQLITE_TYPES[kind]) for name, kind in columns.items()))
        conn.execute(insert, [dict(zip(columns, row, strict=True)) for row in rows])

    def _prune(self, conn: Connection) -> None:
        with self._lock:
            self._batches += 1
            due = self._batches % PRUNE_EVERY == 0
        if due:
            seen = self.tables.seen_views
            conn.execute(seen.delete().where(seen.c.seen_at < datetime.now(UTC) - SEEN_KEPT))
            self._prune_co_views(conn, CO_VIEWS_KEPT)

    def prune_co_views(self, keep: int = CO_VIEWS_KEPT) -> None:
        """Each video keeps its `keep` most shared audiences; the rest, rarely recommended, go."""
        with self.catalog.engine.begin() as conn:
            self._prune_co_views(conn, keep)

    def _prune_co_views(self, conn: Connection, keep: int) -> None:
        conn.execute(text(
            "DELETE FROM analytics_co_views WHERE (video_id, other_id) IN ("
            " SELECT video_id, other_id FROM ("
            "  SELECT video_id, other_id, row_number() OVER (PARTITION BY video_id ORDER BY viewers DESC) AS rank"
            "  FROM analytics_co_views) AS ranked WHERE rank > :keep)"), {"keep": keep})

