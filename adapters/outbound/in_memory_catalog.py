"""The catalog read model in dictionaries, for unit tests and single-process use.

Same contract as SqlCatalog: a write and its tracking position happen together under one
lock, and a notification at or below the recorded position is skipped."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.persistence import IntegrityError, Tracking

from adapters.outbound.in_memory_audience import InMemoryAudience
from application import catalog  # its query rules (tags, words, cursors), shared with SqlCatalog
from application.catalog import NEWEST, SORT_COUNTS, CatalogPage, CatalogRecorder, CatalogVideo, PublicProfileView


class InMemoryVideoCatalog(InMemoryAudience, CatalogRecorder):
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._positions: dict[str, int] = {}
        self._videos: dict[UUID, CatalogVideo] = {}
        self._profiles: dict[UUID, PublicProfileView] = {}
        self._init_audience()

    # --- tracking ------------------------------------------------------------------------

    def insert_tracking(self, tracking: Tracking) -> None:
        with self._lock:
            if not self._is_new(tracking):
                raise IntegrityError(f"already recorded: {tracking}")
            self._positions[tracking.application_name] = tracking.notification_id

    def max_tracking_id(self, application_name: str) -> int | None:
        with self._lock:
            return self._positions.get(application_name)

    def _is_new(self, tracking: Tracking) -> bool:
        return tracking.notification_id > self._positions.get(tracking.application_name, 0)

    def _apply(self, tracking: Tracking, change: Callable[[], None]) -> None:
        with self._lock:
            if self._is_new(tracking):
                change()  # each change is one assignment, so a failure leaves nothing half done
                self._positions[tracking.application_name] = tracking.notification_id

    # --- view writes ---------------------------------------------------------------------

    def add_video(self, video: CatalogVideo, tracking: Tracking) -> None:
        self._apply(tracking, lambda: self._videos.__setitem__(video.id, video))

    def update_video(self, video_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        def change() -> None:
            if video := self._videos.get(video_id):
                self._videos[video_id] = _changed(video, changes)

        self._apply(tracking, change)

    def remove_video(self, video_id: UUID, tracking: Tracking) -> None:
        def change() -> None:
            self._videos.pop(video_id, None)
            self.forget_audience_of(video_id)

        self._apply(tracking, change)

    def add_profile(self, profile: PublicProfileView, tracking: Tracking) -> None:
        self._apply(tracking, lambda: self._profiles.__setitem__(profile.id, profile))

    def update_profile(self, user_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        def change() -> None:
            if profile := self._profiles.get(user_id):
                self._profiles[user_id] = msgspec.structs.replace(profile, **changes)

        self._apply(tracking, change)

    # --- queries -------------------------------------------------------------------------

    def get(self, video_id: UUID) -> CatalogVideo | None:
        with self._lock:
            video = self._videos.get(video_id)
            return self.with_counts(video) if video else None

    def list_public(
        self, *, owner: UUID | None = None, tag: str | None = None, query: str | None = None,
        cursor: str | None = None, limit: int = 20, genre: str | None = None, sort: str = NEWEST,
    ) -> CatalogPage:
        wanted_tag = catalog.normalise_tag(tag) if tag is not None else None
        words = catalog.search_words(query or "")

        def listed(video: CatalogVideo) -> bool:
            return (
                video.visibility == "public" and video.status == "ready"
                and (owner is None or video.owner_id == owner)
                and (wanted_tag is None or wanted_tag in video.tags)
                and (genre is None or video.genre == genre)
                and all(word in _words_of(video) for word in words)
            )

        return self._page(listed, cursor, limit, sort)

    def list_for_owner(self, owner: UUID, *, cursor: str | None = None, limit: int = 20) -> CatalogPage:
        return self._page(lambda video: video.owner_id == owner, cursor, limit)

    def unsettled_videos(self, *, waiting_before: datetime, failed_since: datetime) -> list[UUID]:
        return [
            video.id for video in list(self._videos.values())
            if (video.status in ("uploaded", "processing") and video.updated_at < waiting_before)
            or (video.status == "failed" and video.updated_at >= failed_since)
        ]

    def get_profile(self, user_id: UUID) -> PublicProfileView | None:
        with self._lock:
            return self._profiles.get(user_id)

    def _page(
        self, listed: Callable[[CatalogVideo], bool], cursor: str | None, limit: int, sort: str = NEWEST,
    ) -> CatalogPage:
        limit = catalog.check_limit(limit)
        key = _sort_key(sort)
        after: tuple | None = None
        if cursor is not None:
            after = catalog.decode_cursor(cursor) if sort == NEWEST else catalog.decode_count_cursor(cursor)
        with self._lock:
            videos = [self.with_counts(video) for video in self._videos.values() if listed(video)]
        ordered = sorted(videos, key=key, reverse=True)
        if after is not None:
            ordered = [video for video in ordered if key(video) < after]
        items = ordered[:limit]
        return CatalogPage(items=items, next_cursor=catalog.encode_cursor(items[-1], sort) if len(ordered) > limit else None)


def _sort_key(sort: str) -> Callable[[CatalogVideo], tuple]:
    if sort == NEWEST:
        return lambda video: (video.created_at, video.id)
    return lambda video: (getattr(video, SORT_COUNTS[sort]), video.created_at, video.id)


def _words_of(video: CatalogVideo) -> set[str]:
    return set(catalog.search_words(" ".join([video.title, video.description, *video.tags])))


def _changed(video: CatalogVideo, changes: dict[str, Any]) -> CatalogVideo:
    # Through builtins and back, so every field is checked against CatalogVideo again.
    fields = {**msgspec.to_builtins(video, builtin_types=(UUID, datetime)), **changes}
    return msgspec.convert(fields, CatalogVideo)
