"""Listing and searching videos, from the catalog read model (no aggregate is loaded)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import msgspec

from application.catalog import NEWEST, CatalogVideo, VideoCatalog, check_sort
from application.errors import Unavailable
from application.media_links import MediaLinks
from application.video_views import VideoFigures, VideoView, video_view
from domain.genres import check_genre
from domain.videos import PROCESSING, READY


class VideoPage(msgspec.Struct):
    items: list[VideoView]
    next_cursor: str | None


class VideoListing:
    def __init__(self, catalog: VideoCatalog, links: MediaLinks) -> None:
        self.catalog = catalog
        self.links = links
        # Which of these videos the viewer likes; set when the read model knows likes.
        self.liked_among: Callable[[UUID, list[UUID]], set[UUID]] | None = None
        # How far a processing video's work is: the job on the write side knows, the catalog
        # does not (it changes with every task). Public listings hold ready videos only; an
        # owner's library and a watch history may hold processing ones.
        self.processing_progress: Callable[[UUID], float] | None = None

    def list_public(
        self, *, owner: UUID | None = None, tag: str | None = None, query: str | None = None,
        cursor: str | None = None, limit: int = 20, genre: str | None = None, sort: str = NEWEST,
        viewer_id: UUID | None = None,
    ) -> VideoPage:
        """Public, ready videos, newest first (or by views, likes), filtered and paged by an opaque cursor."""
        page = self.catalog.list_public(
            owner=owner, tag=tag, query=query, cursor=cursor, limit=limit,
            genre=check_genre(genre) if genre is not None else None, sort=check_sort(sort),
        )
        return VideoPage(items=self.views(page.items, viewer_id), next_cursor=page.next_cursor)

    def list_owned(self, owner_id: UUID, *, cursor: str | None = None, limit: int = 20) -> VideoPage:
        """All of one owner's videos, any status or visibility, newest first: their own library.
        From the read model, so an upload shows up once the projector has seen it."""
        page = self.catalog.list_for_owner(owner_id, cursor=cursor, limit=limit)
        return VideoPage(items=self.views(page.items, owner_id), next_cursor=page.next_cursor)

    def views(self, videos: list[CatalogVideo], viewer_id: UUID | None) -> list[VideoView]:
        """The videos as the api shows them, `liked_by_me` for the viewer."""
        liked: set[UUID] = set()
        if viewer_id is not None and self.liked_among is not None and videos:
            liked = self.liked_among(viewer_id, [video.id for video in videos])
        return [self._view(video, video.id in liked) for video in videos]

    def _view(self, video: CatalogVideo, liked: bool) -> VideoView:
        figures = VideoFigures(video.view_count, video.like_count, video.comment_count, liked)
        return video_view(video, self.links, created_at=video.created_at, updated_at=video.updated_at,
                          progress=self._progress(video), figures=figures)

    def _progress(self, video: CatalogVideo) -> float:
        if video.status == READY:
            return 1.0
        if video.status == PROCESSING and self.processing_progress is not None:
            try:
                return self.processing_progress(video.id)
            except Unavailable:
                pass  # the event store is away: the read model alone still lists the videos
        return 0.0
