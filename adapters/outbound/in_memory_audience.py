"""The audience's part of the in-memory read model, mixed into InMemoryVideoCatalog (which owns
the lock, the videos and the tracking positions). Same contract as SqlAudience."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking

from application.audience import (
    CommentAuthor,
    CommentRows,
    DayViews,
    WatchedRows,
    decode_position,
    encode_position,
)
from application.catalog import CatalogComment, CatalogVideo, PublicProfileView, check_limit


class InMemoryAudience:
    _lock: threading.Lock
    _videos: dict[UUID, CatalogVideo]
    _profiles: dict[UUID, PublicProfileView]

    def _init_audience(self) -> None:
        self._counts: defaultdict[UUID, dict[str, int]] = defaultdict(
            lambda: {"view_count": 0, "like_count": 0, "comment_count": 0})
        self._likes: set[tuple[UUID, UUID]] = set()
        self._comments: dict[UUID, CatalogComment] = {}
        self.views_per_day: defaultdict[tuple[UUID, date], int] = defaultdict(int)
        self.history: dict[UUID, dict[UUID, datetime]] = defaultdict(dict)
        self.co_views: defaultdict[UUID, defaultdict[UUID, int]] = defaultdict(lambda: defaultdict(int))

    def _apply(self, tracking: Tracking, change: Callable[[], None]) -> None:  # InMemoryVideoCatalog's
        raise NotImplementedError

    def with_counts(self, video: CatalogVideo) -> CatalogVideo:
        counts = self._counts.get(video.id)
        return msgspec.structs.replace(video, **counts) if counts else video

    def bump(self, video_id: UUID, field: str, delta: int) -> None:
        """Under the lock."""
        self._counts[video_id][field] += delta

    # --- writes of the catalog projection ------------------------------------------------

    def set_like(self, video_id: UUID, user_id: UUID, liked: bool, tracking: Tracking) -> None:
        def change() -> None:
            if liked != ((video_id, user_id) in self._likes):
                (self._likes.add if liked else self._likes.discard)((video_id, user_id))
                self.bump(video_id, "like_count", 1 if liked else -1)

        self._apply(tracking, change)

    def add_comment(self, comment: CatalogComment, tracking: Tracking) -> None:
        def change() -> None:
            self._comments[comment.id] = comment
            self.bump(comment.video_id, "comment_count", 1)

        self._apply(tracking, change)

    def update_comment(self, comment_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        def change() -> None:
            comment = self._comments.get(comment_id)
            if comment is None:
                return
            if changes.get("deleted") and not comment.deleted:
                self.bump(comment.video_id, "comment_count", -1)
            self._comments[comment_id] = msgspec.structs.replace(comment, **changes)

        self._apply(tracking, change)

    def forget_audience_of(self, video_id: UUID) -> None:
        """Under the lock: a deleted video takes its likes, comments and figures with it."""
        self._counts.pop(video_id, None)
        self._likes = {like for like in self._likes if like[0] != video_id}
        self._comments = {key: c for key, c in self._comments.items() if c.video_id != video_id}
        for key in [key for key in self.views_per_day if key[0] == video_id]:
            del self.views_per_day[key]
        self.co_views.pop(video_id, None)
        for others in self.co_views.values():
            others.pop(video_id, None)
        for watched in self.history.values():
            watched.pop(video_id, None)

    # --- queries ---------------------------------------------------------------------------

    def counts(self, video_id: UUID) -> tuple[int, int, int]:
        with self._lock:
            counts = self._counts.get(video_id) or {"view_count": 0, "like_count": 0, "comment_count": 0}
            return counts["view_count"], counts["like_count"], counts["comment_count"]

    def liked_among(self, user_id: UUID, video_ids: list[UUID]) -> set[UUID]:
        with self._lock:
            return {video_id for video_id in video_ids if (video_id, user_id) in self._likes}

    def comments(self, video_id: UUID, *, cursor: str | None = None, limit: int = 20) -> CommentRows:
        limit = check_limit(limit)
        after = decode_position(cursor, tuple[datetime, UUID]) if cursor is not None else None
        with self._lock:
            found = sorted((c for c in self._comments.values() if c.video_id == video_id),
                           key=lambda c: (c.created_at, c.id))
            if after is not None:
                found = [c for c in found if (c.created_at, c.id) > after]
            items = [(c, self._author(c.author_id)) for c in found[:limit]]
        last = items[-1][0] if items else None
        next_cursor = encode_position(last.created_at, last.id) if last and len(found) > limit else None
        return CommentRows(items=items, next_cursor=next_cursor)

    def _author(self, user_id: UUID) -> CommentAuthor | None:
        profile = self._profiles.get(user_id)
        return CommentAuthor(profile.id, profile.username, profile.display_name) if profile else None

    def watched(self, user_id: UUID, *, cursor: str | None = None, limit: int = 20) -> WatchedRows:
        limit = check_limit(limit)
        before = decode_position(cursor, tuple[datetime, UUID]) if cursor is not None else None
        with self._lock:
            found = sorted(((at, video_id) for video_id, at in self.history.get(user_id, {}).items()
                            if video_id in self._videos), reverse=True)
            if before is not None:
                found = [entry for entry in found if entry < before]
            items = [(self.with_counts(self._videos[video_id]), at) for at, video_id in found[:limit]]
        next_cursor = encode_position(items[-1][1], items[-1][0].id) if len(found) > limit else None
        return WatchedRows(items=items, next_cursor=next_cursor)

    def clear_watched(self, user_id: UUID) -> None:
        with self._lock:
            self.history.pop(user_id, None)

    def co_viewed(self, video_id: UUID, limit: int) -> list[CatalogVideo]:
        with self._lock:
            others: dict[UUID, int] = self.co_views.get(video_id, {})
            ranked = sorted((video for other in others if (video := self._videos.get(other))),
                            key=lambda video: (others[video.id], video.created_at), reverse=True)
            return [self.with_counts(video) for video in ranked[:limit]]

    def similar(self, video: CatalogVideo, limit: int) -> list[CatalogVideo]:
        def score(other: CatalogVideo) -> int:
            return len(set(other.tags) & set(video.tags)) + int(video.genre is not None and other.genre == video.genre)

        with self._lock:
            ranked = sorted((other for other in self._videos.values() if other.id != video.id and score(other)),
                            key=lambda other: (score(other), other.created_at), reverse=True)
            return [self.with_counts(other) for other in ranked[:limit]]

    def views_by_day(self, video_id: UUID) -> list[DayViews]:
        with self._lock:
            return [DayViews(date=day, views=views) for (video, day), views in sorted(self.views_per_day.items())
                    if video == video_id]
