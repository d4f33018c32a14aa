"""The audience's part of the SQL read model: likes, comments, per-video counts (projected from
the videos' log) and the analytics tables (written by the analytics consumer). The tables live
in SqlCatalog's metadata; `SqlAudience` is mixed into SqlCatalog and uses its engine."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Date,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    and_,
    delete,
    desc,
    func,
    or_,
    select,
    update,
)

from application.audience import (
    CommentAuthor,
    CommentRows,
    DayViews,
    WatchedRows,
    decode_position,
    encode_position,
)
from application.catalog import CatalogComment, CatalogVideo, check_limit


@dataclass(frozen=True)
class AudienceTables:
    stats: Table
    likes: Table
    comments: Table
    views_by_day: Table
    history: Table
    co_views: Table
    seen_views: Table
    offsets: Table

    @property
    def kept_on_rebuild(self) -> tuple[Table, ...]:
        """Written by the analytics consumer from Kafka, not projected from the event store."""
        return (self.stats, self.views_by_day, self.history, self.co_views, self.seen_views, self.offsets)


def define_audience_tables(metadata: MetaData, timestamp: Any) -> AudienceTables:
    """`timestamp` is the column type of aware UTC datetimes (UtcDateTime)."""
    stats = Table(
        "catalog_video_stats", metadata,
        Column("video_id", Uuid, primary_key=True),
        Column("view_count", BigInteger, nullable=False, server_default="0"),
        Column("like_count", BigInteger, nullable=False, server_default="0"),
        Column("comment_count", BigInteger, nullable=False, server_default="0"),
        Index("catalog_video_stats_views", "view_count"),
        Index("catalog_video_stats_likes", "like_count"),
    )
    likes = Table(
        "catalog_likes", metadata,
        Column("video_id", Uuid, primary_key=True),
        Column("user_id", Uuid, primary_key=True),
        Index("catalog_likes_user", "user_id", "video_id"),
    )
    comments = Table(
        "catalog_comments", metadata,
        Column("id", Uuid, primary_key=True),
        Column("video_id", Uuid, nullable=False),
        Column("author_id", Uuid, nullable=False),
        Column("body", Text, nullable=False),
        Column("parent_id", Uuid),
        Column("created_at", timestamp, nullable=False),
        Column("edited_at", timestamp),
        Column("deleted", Boolean, nullable=False, server_default="0"),
        Index("catalog_comments_oldest", "video_id", "created_at", "id"),
    )
    views_by_day = Table(
        "analytics_views_by_day", metadata,
        Column("video_id", Uuid, primary_key=True),
        Column("day", Date, primary_key=True),
        Column("views", BigInteger, nullable=False),
    )
    history = Table(
        "analytics_history", metadata,
        Column("user_id", Uuid, primary_key=True),
        Column("video_id", Uuid, primary_key=True),
        Column("viewed_at", timestamp, nullable=False),
        Index("analytics_history_newest", "user_id", "viewed_at", "video_id"),
    )
    # How many viewers of video_id also watched other_id.
    co_views = Table(
        "analytics_co_views", metadata,
        Column("video_id", Uuid, primary_key=True),
        Column("other_id", Uuid, primary_key=True),
        Column("viewers", BigInteger, nullable=False),
        Index("analytics_co_views_top", "video_id", "viewers"),
    )
    # Views already counted, by event id: a view published twice (a retried batch) counts once.
    seen_views = Table(
        "analytics_seen_views", metadata,
        Column("event_id", String(64), primary_key=True),
        Column("seen_at", timestamp, nullable=False, index=True),
    )
    # The consumer's position per partition, committed with the figures it moved.
    offsets = Table(
        "analytics_offsets", metadata,
        Column("consumer", String(64), primary_key=True),
        Column("topic", String(255), primary_key=True),
        Column("partition", Integer, primary_key=True),
        Column("offset", BigInteger, nullable=False),
    )
    return AudienceTables(stats, likes, comments, views_by_day, history, co_views, seen_views, offsets)


class SqlAudience:
    """Mixed into SqlCatalog, which provides these attributes and helpers."""

    engine: Engine
    videos: Table
    profiles: Table
    audience: AudienceTables
    _insert: Any

    def _apply(self, tracking: Tracking, change: Any) -> None:  # SqlCatalog's
        raise NotImplementedError

    def _select_videos(self) -> Any:  # SqlCatalog's
        raise NotImplementedError

    def _videos_of(self, rows: Any) -> list[CatalogVideo]:  # SqlCatalog's
        raise NotImplementedError

    # --- writes of the catalog projection ------------------------------------------------

    def bump_stats(self, conn: Connection, video_id: UUID, **deltas: int) -> None:
        stats = self.audience.stats
        insert = self._insert(stats).values(video_id=video_id, **deltas)
        conn.execute(insert.on_conflict_do_update(
            index_elements=[stats.c.video_id],
            set_={name: stats.c[name] + insert.excluded[name] for name in deltas},
        ))

    def set_like(self, video_id: UUID, user_id: UUID, liked: bool, tracking: Tracking) -> None:
        likes = self.audience.likes

        def change(conn: Connection) -> None:
            if liked:
                statement = self._insert(likes).values(video_id=video_id, user_id=user_id).on_conflict_do_nothing()
            else:
                statement = delete(likes).where(likes.c.video_id == video_id, likes.c.user_id == user_id)
            # RETURNING, as rowcount is not reliable for an upsert on every driver.
            if conn.execute(statement.returning(likes.c.user_id)).first() is not None:
                self.bump_stats(conn, video_id, like_count=1 if liked else -1)

        self._apply(tracking, change)

    def add_comment(self, comment: CatalogComment, tracking: Tracking) -> None:
        def change(conn: Connection) -> None:
            conn.execute(self.audience.comments.insert().values(
                id=comment.id, video_id=comment.video_id, author_id=comment.author_id, body=comment.body,
                parent_id=comment.parent_id, created_at=comment.created_at, edited_at=comment.edited_at,
                deleted=comment.deleted,
            ))
            self.bump_stats(conn, comment.video_id, comment_count=1)

        self._apply(tracking, change)

    def update_comment(self, comment_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        comments = self.audience.comments

        def change(conn: Connection) -> None:
            row = conn.execute(select(comments.c.video_id, comments.c.deleted).where(comments.c.id == comment_id)).first()
            if row is None:
                return
            conn.execute(update(comments).where(comments.c.id == comment_id).values(changes))
            if changes.get("deleted") and not row.deleted:
                self.bump_stats(conn, row.video_id, comment_count=-1)

        self._apply(tracking, change)

    def forget_audience_of(self, conn: Connection, video_id: UUID) -> None:
        """A deleted video takes its likes, comments and figures with it."""
        tables = self.audience
        for table in (tables.likes, tables.comments, tables.stats, tables.views_by_day):
            conn.execute(delete(table).where(table.c.video_id == video_id))
        conn.execute(delete(tables.co_views).where(
            or_(tables.co_views.c.video_id == video_id, tables.co_views.c.other_id == video_id)))
        conn.execute(delete(tables.history).where(tables.history.c.video_id == video_id))

    # --- queries (application.audience.AudienceReadModel) -----------------------------------

    def counts(self, video_id: UUID) -> tuple[int, int, int]:
        stats = self.audience.stats
        with self.engine.connect() as conn:
            row = conn.execute(
                select(stats.c.view_count, stats.c.like_count, stats.c.comment_count).where(stats.c.video_id == video_id)
            ).first()
        return (int(row[0]), int(row[1]), int(row[2])) if row else (0, 0, 0)

    def liked_among(self, user_id: UUID, video_ids: list[UUID]) -> set[UUID]:
        likes = self.audience.likes
        with self.engine.connect() as conn:
            rows = conn.execute(select(likes.c.video_id).where(likes.c.user_id == user_id, likes.c.video_id.in_(video_ids)))
            return {row[0] for row in rows}

    def comments(self, video_id: UUID, *, cursor: str | None = None, limit: int = 20) -> CommentRows:
        limit = check_limit(limit)
        comments, profiles = self.audience.comments, self.profiles
        conditions = [comments.c.video_id == video_id]
        if cursor is not None:
            created_at, comment_id = decode_position(cursor, tuple[datetime, UUID])
            conditions.append(or_(comments.c.created_at > created_at,
                                  and_(comments.c.created_at == created_at, comments.c.id > comment_id)))
        statement = (
            select(comments, profiles.c.username, profiles.c.display_name)
            .select_from(comments.outerjoin(profiles, profiles.c.id == comments.c.author_id))
            .where(*conditions).order_by(comments.c.created_at, comments.c.id).limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        items = []
        for row in rows[:limit]:
            comment = CatalogComment(
                id=row.id, video_id=row.video_id, author_id=row.author_id, body=row.body, parent_id=row.parent_id,
                created_at=row.created_at, edited_at=row.edited_at, deleted=bool(row.deleted),
            )
            author = CommentAuthor(row.author_id, row.username, row.display_name) if row.username else None
            items.append((comment, author))
        last = items[-1][0] if items else None
        next_cursor = encode_position(last.created_at, last.id) if last and len(rows) > limit else None
        return CommentRows(items=items, next_cursor=next_cursor)

    def watched(self, user_id: UUID, *, cursor: str | None = None, limit: int = 20) -> WatchedRows:
        limit = check_limit(limit)
        history = self.audience.history
        conditions = [history.c.user_id == user_id]
        if cursor is not None:
            viewed_at, video_id = decode_position(cursor, tuple[datetime, UUID])
            conditions.append(or_(history.c.viewed_at < viewed_at,
                                  and_(history.c.viewed_at == viewed_at, history.c.video_id < video_id)))
        statement = (
            self._select_videos().add_columns(history.c.viewed_at)
            .join(history, history.c.video_id == self.videos.c.id)
            .where(*conditions).order_by(history.c.viewed_at.desc(), history.c.video_id.desc()).limit(limit + 1)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        items = [(msgspec.convert({str(name): value for name, value in row._mapping.items() if name != "viewed_at"},
                                  CatalogVideo), row.viewed_at) for row in rows[:limit]]
        next_cursor = encode_position(items[-1][1], items[-1][0].id) if len(rows) > limit else None
        return WatchedRows(items=items, next_cursor=next_cursor)

    def clear_watched(self, user_id: UUID) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(self.audience.history).where(self.audience.history.c.user_id == user_id))

    def co_viewed(self, video_id: UUID, limit: int) -> list[CatalogVideo]:
        co_views = self.audience.co_views
        statement = (
            self._select_videos().join(co_views, co_views.c.other_id == self.videos.c.id)
            .where(co_views.c.video_id == video_id)
            .order_by(co_views.c.viewers.desc(), self.videos.c.created_at.desc()).limit(limit)
        )
        with self.engine.connect() as conn:
            return self._videos_of(conn.execute(statement).all())

    def similar(self, video: CatalogVideo, limit: int) -> list[CatalogVideo]:
        tags = self._video_tags_table()
        shared = (
            select(tags.c.video_id, func.count().label("shared"))
            .where(tags.c.tag.in_(video.tags or [""])).group_by(tags.c.video_id).subquery()
        )
        same_genre = (self.videos.c.genre == video.genre) if video.genre else (self.videos.c.id != self.videos.c.id)
        score = func.coalesce(shared.c.shared, 0) + func.cast(same_genre, Integer)
        statement = (
            self._select_videos().outerjoin(shared, shared.c.video_id == self.videos.c.id)
            .where(or_(shared.c.shared > 0, same_genre), self.videos.c.id != video.id)
            .order_by(desc(score), self.videos.c.created_at.desc()).limit(limit)
        )
        with self.engine.connect() as conn:
            return self._videos_of(conn.execute(statement).all())

    def _video_tags_table(self) -> Table:  # SqlCatalog's
        raise NotImplementedError

    def views_by_day(self, video_id: UUID) -> list[DayViews]:
        by_day = self.audience.views_by_day
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(by_day.c.day, by_day.c.views).where(by_day.c.video_id == video_id).order_by(by_day.c.day)
            ).all()
        return [DayViews(date=row.day, views=int(row.views)) for row in rows]
