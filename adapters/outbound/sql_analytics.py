"""The analytics consumer's writer in SQL: a batch of views and the consumer's offsets commit in
one transaction, so a redelivered message (a restart, a rebalance) is never counted twice."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import Connection, case, func, select, tuple_

from adapters.outbound.sql_catalog import SqlCatalog
from application.analytics import CO_VIEW_LOOKBACK, Position, ViewEffects, plan_views
from application.integration_events import VideoViewed

SEEN_KEPT = timedelta(days=2)  # a republished view arrives within minutes; ids older than this are dropped
PRUNE_EVERY = 500  # batches


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
        """Each viewer's latest videos, and whether they watched the batch's videos before."""
        history = self.tables.history
        users = list({UUID(view.user_id) for view in views})
        ranked = select(
            history.c.user_id, history.c.video_id, history.c.viewed_at,
            func.row_number().over(partition_by=history.c.user_id, order_by=history.c.viewed_at.desc()).label("rank"),
        ).where(history.c.user_id.in_(users)).subquery()
        latest = select(ranked.c.user_id, ranked.c.video_id, ranked.c.viewed_at).where(ranked.c.rank <= CO_VIEW_LOOKBACK)
        pairs = list({(UUID(view.user_id), UUID(view.video_id)) for view in views})
        watched = select(history.c.user_id, history.c.video_id, history.c.viewed_at).where(
            tuple_(history.c.user_id, history.c.video_id).in_(pairs))
        histories: dict[UUID, dict[UUID, datetime]] = {}
        for statement in (latest, watched):
            for user_id, video_id, viewed_at in conn.execute(statement):
                histories.setdefault(user_id, {})[video_id] = viewed_at.replace(tzinfo=viewed_at.tzinfo or UTC)
        return histories

    def _write(self, conn: Connection, effects: ViewEffects) -> None:
        tables, insert = self.tables, self.catalog._insert
        stats = insert(tables.stats)
        conn.execute(stats.on_conflict_do_update(
            index_elements=[tables.stats.c.video_id],
            set_={"view_count": tables.stats.c.view_count + stats.excluded.view_count}),
            [{"video_id": video, "view_count": n} for video, n in effects.views.items()])
        per_day = insert(tables.views_by_day)
        conn.execute(per_day.on_conflict_do_update(
            index_elements=[tables.views_by_day.c.video_id, tables.views_by_day.c.day],
            set_={"views": tables.views_by_day.c.views + per_day.excluded.views}),
            [{"video_id": video, "day": day, "views": n} for (video, day), n in effects.per_day.items()])
        watched = insert(tables.history)
        later = case((watched.excluded.viewed_at > tables.history.c.viewed_at, watched.excluded.viewed_at),
                     else_=tables.history.c.viewed_at)
        conn.execute(watched.on_conflict_do_update(
            index_elements=[tables.history.c.user_id, tables.history.c.video_id], set_={"viewed_at": later}),
            [{"user_id": user, "video_id": video, "viewed_at": at} for (user, video), at in effects.watched.items()])
        if effects.co_views:
            co_views = insert(tables.co_views)
            conn.execute(co_views.on_conflict_do_update(
                index_elements=[tables.co_views.c.video_id, tables.co_views.c.other_id],
                set_={"viewers": tables.co_views.c.viewers + co_views.excluded.viewers}),
                [{"video_id": a, "other_id": b, "viewers": n} for (a, b), n in effects.co_views.items()])

    def _prune(self, conn: Connection) -> None:
        with self._lock:
            self._batches += 1
            due = self._batches % PRUNE_EVERY == 0
        if due:
            seen = self.tables.seen_views
            conn.execute(seen.delete().where(seen.c.seen_at < datetime.now(UTC) - SEEN_KEPT))
