"""The catalog read model in SQL (PostgreSQL or SQLite) through SQLAlchemy Core.

One object is both the projection's tracking recorder and its view: each change runs in one
transaction that first advances the tracking row for its application and then writes the
view, so a crash commits both or neither, and a notification already applied is skipped.

Full-text search: PostgreSQL keeps a generated tsvector column with a GIN index; SQLite an
FTS5 index kept by triggers, or LIKE over the columns where sqlite3 was built without FTS5.
Both use the 'simple' word rules (no stemming), so the same words match on either."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import UTC, datetime
from typing import Any, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, Tracking
from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ColumnElement,
    Computed,
    Connection,
    DateTime,
    Dialect,
    Float,
    Index,
    Integer,
    MetaData,
    Select,
    String,
    Table,
    Text,
    TypeDecorator,
    Uuid,
    and_,
    cast,
    column,
    create_engine,
    delete,
    event,
    func,
    inspect,
    literal_column,
    make_url,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Engine, Row

from adapters.outbound.persistence_errors import translate_sql_errors
from adapters.outbound.sql_audience import SqlAudience, define_audience_tables
from application.catalog import (
    NEWEST,
    SORT_COUNTS,
    CatalogPage,
    CatalogRecorder,
    CatalogVideo,
    PublicProfileView,
    check_limit,
    decode_count_cursor,
    decode_cursor,
    encode_cursor,
    normalise_tag,
    search_words,
)
from domain.media import upcast_untyped

T = TypeVar("T")
SCHEMA_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
COUNT_FIELDS = ("view_count", "like_count", "comment_count")  # from catalog_video_stats
VIDEO_FIELDS = tuple(name for name in CatalogVideo.__struct_fields__ if name not in COUNT_FIELDS)
PROFILE_FIELDS = PublicProfileView.__struct_fields__

# FTS5 as an external-content index over catalog_videos, kept in step by triggers in the
# writing transaction itself. It is keyed by `seq`, an INTEGER PRIMARY KEY, because plain
# rowids may be renumbered by VACUUM.
SQLITE_FTS = (
    "CREATE VIRTUAL TABLE IF NOT EXISTS catalog_videos_fts USING fts5("
    "title, description, tags, content='catalog_videos', content_rowid='seq')",
    "CREATE TRIGGER IF NOT EXISTS catalog_videos_fts_insert AFTER INSERT ON catalog_videos BEGIN "
    "INSERT INTO catalog_videos_fts(rowid, title, description, tags) "
    "VALUES (new.seq, new.title, new.description, new.tags); END",
    "CREATE TRIGGER IF NOT EXISTS catalog_videos_fts_delete AFTER DELETE ON catalog_videos BEGIN "
    "INSERT INTO catalog_videos_fts(catalog_videos_fts, rowid, title, description, tags) "
    "VALUES ('delete', old.seq, old.title, old.description, old.tags); END",
    "CREATE TRIGGER IF NOT EXISTS catalog_videos_fts_update "
    "AFTER UPDATE OF title, description, tags ON catalog_videos BEGIN "
    "INSERT INTO catalog_videos_fts(catalog_videos_fts, rowid, title, description, tags) "
    "VALUES ('delete', old.seq, old.title, old.description, old.tags); "
    "INSERT INTO catalog_videos_fts(rowid, title, description, tags) "
    "VALUES (new.seq, new.title, new.description, new.tags); END",
)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, also on SQLite, which stores no offset."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _define_tables(metadata: MetaData, on_postgres: bool) -> tuple[Table, Table, Table, Table]:
    if on_postgres:
        keys: list[Any] = [Column("id", Uuid, primary_key=True)]
        search: list[Any] = [
            Column("search", postgresql.TSVECTOR, Computed(
                "to_tsvector('simple'::regconfig, title || ' ' || description || ' ' || tags::text)",
                persisted=True,
            )),
            Index("catalog_videos_search", "search", postgresql_using="gin"),
        ]
    else:
        keys = [Column("seq", Integer, primary_key=True), Column("id", Uuid, nullable=False, unique=True)]
        search = []
    videos = Table(
        "catalog_videos", metadata, *keys,
        Column("owner_id", Uuid, nullable=False, index=True),
        Column("title", Text, nullable=False),
        Column("description", Text, nullable=False),
        Column("tags", JSON, nullable=False),
        Column("visibility", String(16), nullable=False),
        Column("status", String(16), nullable=False),
        Column("failure_reason", Text),
        Column("duration_s", Float),
        Column("width", Integer),
        Column("height", Integer),
        Column("renditions", JSON, nullable=False),
        Column("thumbnails", JSON, nullable=False),
        Column("manifests", JSON, nullable=False),
        Column("genre", String(32), index=True),
        Column("created_at", UtcDateTime, nullable=False),
        Column("updated_at", UtcDateTime, nullable=False),
        Index("catalog_videos_newest", "created_at", "id"),
        *search,
    )
    # One row per (tag, video): an indexed tag filter that works the same on both databases.
    video_tags = Table(
        "catalog_video_tags", metadata,
        Column("tag", Text, primary_key=True),
        Column("video_id", Uuid, primary_key=True),
    )
    profiles = Table(
        "catalog_profiles", metadata,
        Column("id", Uuid, primary_key=True),
        Column("username", String(32), nullable=False),
        Column("display_name", Text, nullable=False),
        Column("bio", Text, nullable=False),
        Column("avatar_url", Text),
    )
    # One row per upstream application: its last applied notification id.
    tracking = Table(
        "catalog_tracking", metadata,
        Column("application_name", String(64), primary_key=True),
        Column("notification_id", BigInteger, nullable=False),
    )
    return videos, video_tags, profiles, tracking


def create_catalog_engine(url: str, *, pool_size: int = 2, max_overflow: int = 8) -> Engine:
    """postgresql://…[?schema=name] (psycopg 3; tables in that schema) or sqlite:///path.
    pool_size: PostgreSQL connections kept open; up to max_overflow more under load."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        engine = _postgres_engine(parsed, pool_size, max_overflow)
    else:
        engine = create_engine(parsed, connect_args={"timeout": 10}, json_serializer=_json_text)
        event.listen(engine, "connect", _use_wal)
    translate_sql_errors(engine)
    return engine


def _postgres_engine(url: URL, pool_size: int, max_overflow: int) -> Engine:
    schema = url.query.get("schema")
    url = url.set(drivername="postgresql+psycopg").difference_update_query(["schema"])
    connect_args: dict[str, Any] = {"connect_timeout": 2}
    if schema:
        if not isinstance(schema, str) or not SCHEMA_NAME.fullmatch(schema):
            raise ValueError(f"not a plain schema name: {schema!r}")
        connect_args["options"] = f"-c search_path={schema}"
    return create_engine(
        # SQLAlchemy opens connections when asked, and a pool_size of 0 would mean no limit.
        url, connect_args=connect_args, pool_pre_ping=True, pool_size=max(1, pool_size),
        max_overflow=max_overflow if pool_size else max(0, max_overflow - 1),
        json_serializer=_json_text,
    )


def _json_text(value: Any) -> str:
    # Tags are searched in their JSON text, so "café" must stay "café", not "caf\u00e9" (msgspec
    # writes UTF-8 as it is); renditions, manifests and thumbnails arrive as Structs.
    return msgspec.json.encode(value).decode()


def _use_wal(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # Readers (the api) then never block the projector's writes, nor it theirs.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")


def _sqlite_has_fts5() -> bool:
    try:
        with closing(sqlite3.connect(":memory:")) as probe:
            probe.execute("CREATE VIRTUAL TABLE probe USING fts5(text)")
    except sqlite3.OperationalError:
        return False
    return True


class SqlCatalog(SqlAudience, CatalogRecorder):
    def __init__(self, url: str, *, pool_size: int = 2, max_overflow: int = 8) -> None:
        self.engine = create_catalog_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.on_postgres = self.engine.dialect.name == "postgresql"
        self.uses_fts5 = not self.on_postgres and _sqlite_has_fts5()
        self.metadata = MetaData()
        self.videos, self.video_tags, self.profiles, self.tracking = _define_tables(self.metadata, self.on_postgres)
        self.audience = define_audience_tables(self.metadata, UtcDateTime)
        self.stats = self.audience.stats
        self._insert = postgresql.insert if self.on_postgres else sqlite.insert

    def create_tables(self) -> None:
        with self.engine.begin() as conn:
            self.metadata.create_all(conn)
            if "genre" not in {column["name"] for column in inspect(conn).get_columns("catalog_videos")}:
                conn.execute(text("ALTER TABLE catalog_videos ADD COLUMN genre VARCHAR(32)"))  # before genres
            if self.uses_fts5:
                for statement in SQLITE_FTS:
                    conn.execute(text(statement))

    def drop_tables(self) -> None:
        """Drop what the projection rebuilds from the event store. The view figures stay: views
        are not in the event store, and the analytics consumer has long moved past them."""
        kept = self.audience.kept_on_rebuild
        with self.engine.begin() as conn:
            if not self.on_postgres:
                conn.execute(text("DROP TABLE IF EXISTS catalog_videos_fts"))
            self.metadata.drop_all(conn, tables=[table for table in self.metadata.sorted_tables if table not in kept])
            if inspect(conn).has_table(self.stats.name):
                conn.execute(update(self.stats).values(like_count=0, comment_count=0))

    def close(self) -> None:
        self.engine.dispose()

    # --- tracking (eventsourcing.persistence.TrackingRecorder) ---------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        with self.engine.begin() as conn:
            if not self._advance(conn, tracking):
                raise IntegrityError(f"already recorded: {tracking}")

    def max_tracking_id(self, application_name: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                select(self.tracking.c.notification_id).where(self.tracking.c.application_name == application_name)
            ).scalar_one_or_none()

    def _advance(self, conn: Connection, tracking: Tracking) -> bool:
        """Move the application's position forward; False when it is already there or beyond.
        Concurrent projectors serialise on this row, so only one applies each notification."""
        insert = self._insert(self.tracking).values(
            application_name=tracking.application_name, notification_id=tracking.notification_id,
        )
        statement = insert.on_conflict_do_update(
            index_elements=[self.tracking.c.application_name],
            set_={"notification_id": insert.excluded.notification_id},
            where=self.tracking.c.notification_id < insert.excluded.notification_id,
        ).returning(self.tracking.c.notification_id)
        return conn.execute(statement).first() is not None

    def _apply(self, tracking: Tracking, change: Callable[[Connection], object]) -> None:
        with self.engine.begin() as conn:
            if self._advance(conn, tracking):
                change(conn)

    # --- view writes (application.catalog.CatalogRecorder) -------------------------------

    def add_video(self, video: CatalogVideo, tracking: Tracking) -> None:
        row = {name: value for name, value in msgspec.to_builtins(video, builtin_types=(UUID, datetime)).items()
               if name not in COUNT_FIELDS}

        def change(conn: Connection) -> None:
            conn.execute(self.videos.insert().values(row))
            self._write_tags(conn, video.id, video.tags)

        self._apply(tracking, change)

    def update_video(self, video_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        def change(conn: Connection) -> None:
            conn.execute(update(self.videos).where(self.videos.c.id == video_id).values(changes))
            if "tags" in changes:
                self._write_tags(conn, video_id, changes["tags"])

        self._apply(tracking, change)

    def remove_video(self, video_id: UUID, tracking: Tracking) -> None:
        def change(conn: Connection) -> None:
            conn.execute(delete(self.videos).where(self.videos.c.id == video_id))
            self._write_tags(conn, video_id, [])
            self.forget_audience_of(conn, video_id)

        self._apply(tracking, change)

    def _write_tags(self, conn: Connection, video_id: UUID, tags: Sequence[str]) -> None:
        conn.execute(delete(self.video_tags).where(self.video_tags.c.video_id == video_id))
        if tags:
            conn.execute(self.video_tags.insert(), [{"tag": tag, "video_id": video_id} for tag in tags])

    def add_profile(self, profile: PublicProfileView, tracking: Tracking) -> None:
        row = msgspec.to_builtins(profile, builtin_types=(UUID,))
        self._apply(tracking, lambda conn: conn.execute(self.profiles.insert().values(row)))

    def update_profile(self, user_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        def change(conn: Connection) -> None:
            if changes:  # an update that changed nothing still moves the position
                conn.execute(update(self.profiles).where(self.profiles.c.id == user_id).values(changes))

        self._apply(tracking, change)

    # --- queries (application.catalog.VideoCatalog) ---------------------------------------

    def get(self, video_id: UUID) -> CatalogVideo | None:
        with self.engine.connect() as conn:
            row = conn.execute(self._select_videos().where(self.videos.c.id == video_id)).first()
        return _video(row) if row else None

    def list_public(
        self, *, owner: UUID | None = None, tag: str | None = None, query: str | None = None,
        cursor: str | None = None, limit: int = 20, genre: str | None = None, sort: str = NEWEST,
    ) -> CatalogPage:
        conditions = [self.videos.c.visibility == "public", self.videos.c.status == "ready"]
        if owner is not None:
            conditions.append(self.videos.c.owner_id == owner)
        if tag is not None:
            conditions.append(self.videos.c.id.in_(
                select(self.video_tags.c.video_id).where(self.video_tags.c.tag == normalise_tag(tag))
            ))
        if genre is not None:
            conditions.append(self.videos.c.genre == genre)
        if query and (words := search_words(query)):
            conditions.append(self._matches(words))
        return self._page(conditions, cursor, limit, sort)

    def list_for_owner(self, owner: UUID, *, cursor: str | None = None, limit: int = 20) -> CatalogPage:
        return self._page([self.videos.c.owner_id == owner], cursor, limit)

    def unfinished(self) -> dict[str, tuple[int, datetime]]:
        """Videos still waiting for their processing to finish, per status (uploaded,
        processing): how many, and when the longest-waiting one last changed."""
        status, changed = self.videos.c.status, self.videos.c.updated_at
        query = (select(status, func.count(), func.min(changed)).where(status.in_(("uploaded", "processing")))
                 .group_by(status))
        with self.engine.connect() as conn:
            return {row[0]: (row[1], row[2]) for row in conn.execute(query)}

    def unsettled_videos(self, *, waiting_before: datetime, failed_since: datetime) -> list[UUID]:
        """What the sweep looks at (see application.sweep.UnsettledVideos)."""
        status, changed = self.videos.c.status, self.videos.c.updated_at
        query = select(self.videos.c.id).where(or_(
            and_(status.in_(("uploaded", "processing")), changed < waiting_before),
            and_(status == "failed", changed >= failed_since),
        ))
        with self.engine.connect() as conn:
            return [row[0] for row in conn.execute(query)]

    def get_profile(self, user_id: UUID) -> PublicProfileView | None:
        columns = [self.profiles.c[name] for name in PROFILE_FIELDS]
        with self.engine.connect() as conn:
            row = conn.execute(select(*columns).where(self.profiles.c.id == user_id)).first()
        return _struct(row, PublicProfileView) if row else None

    def _select_videos(self) -> Select[Any]:
        counts = [func.coalesce(self.stats.c[name], 0).label(name) for name in COUNT_FIELDS]
        return select(*(self.videos.c[name] for name in VIDEO_FIELDS), *counts).select_from(
            self.videos.outerjoin(self.stats, self.stats.c.video_id == self.videos.c.id))

    def _videos_of(self, rows: Sequence[Row[Any]]) -> list[CatalogVideo]:
        return [_video(row) for row in rows]

    def _video_tags_table(self) -> Table:
        return self.video_tags

    def _matches(self, words: list[str]) -> ColumnElement[bool]:
        """Every word appears in the title, the description or the tags."""
        if self.on_postgres:
            return self.videos.c.search.op("@@")(func.plainto_tsquery(literal_column("'simple'"), " ".join(words)))
        if self.uses_fts5:
            # Each word quoted, so nothing a client types is read as FTS5 query syntax.
            expression = " ".join(f'"{word}"' for word in words)
            return self.videos.c.seq.in_(text(
                "SELECT rowid FROM catalog_videos_fts WHERE catalog_videos_fts MATCH :expression"
            ).bindparams(expression=expression).columns(column("rowid", Integer)))
        searched = (self.videos.c.title, self.videos.c.description, cast(self.videos.c.tags, Text))
        return and_(*(or_(*(column.icontains(word, autoescape=True) for column in searched)) for word in words))

    def _page(
        self, conditions: list[ColumnElement[bool]], cursor: str | None, limit: int, sort: str = NEWEST,
    ) -> CatalogPage:
        limit = check_limit(limit)
        created, video = self.videos.c.created_at, self.videos.c.id
        order: list[Any] = [created.desc(), video.desc()]
        if sort != NEWEST:
            count = func.coalesce(self.stats.c[SORT_COUNTS[sort]], 0)
            order.insert(0, count.desc())
        if cursor is not None and sort == NEWEST:
            created_at, video_id = decode_cursor(cursor)
            conditions.append(or_(created < created_at, and_(created == created_at, video < video_id)))
        elif cursor is not None:
            after, created_at, video_id = decode_count_cursor(cursor)
            conditions.append(or_(count < after, and_(count == after, or_(
                created < created_at, and_(created == created_at, video < video_id)))))
        statement = self._select_videos().where(*conditions).order_by(*order).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(statement).all()
        items = [_video(row) for row in rows[:limit]]
        return CatalogPage(items=items, next_cursor=encode_cursor(items[-1], sort) if len(rows) > limit else None)


def _struct(row: Row[Any], struct_type: type[T]) -> T:
    # Column names arrive as SQLAlchemy's str subclass, which msgspec does not take as keys.
    return msgspec.convert(dict(zip(map(str, row._fields), row, strict=True)), struct_type)


def _video(row: Row[Any]) -> CatalogVideo:
    """Rows written before the media was typed hold the progressive MP4 in manifests."""
    fields = {str(name): value for name, value in zip(row._fields, row, strict=True)}
    upcast_untyped(fields)
    return msgspec.convert(fields, CatalogVideo)
