"""Listing and searching videos, from the catalog read model (no aggregate is loaded)."""

from __future__ import annotations

from uuid import UUID

import msgspec

from application.catalog import CatalogVideo, VideoCatalog
from application.media_links import MediaLinks
from application.videos import VideoView
from domain.videos import READY


class VideoPage(msgspec.Struct):
    items: list[VideoView]
    next_cursor: str | None


class VideoListing:
    def __init__(self, catalog: VideoCatalog, links: MediaLinks) -> None:
        self.catalog = catalog
        self.links = links

    def list_public(
        self, *, owner: UUID | None = None, tag: str | None = None, query: str | None = None,
        cursor: str | None = None, limit: int = 20,
    ) -> VideoPage:
        """Public, ready videos, newest first, filtered and paged by an opaque cursor."""
        page = self.catalog.list_public(owner=owner, tag=tag, query=query, cursor=cursor, limit=limit)
        return VideoPage(items=[self._view(video) for video in page.items], next_cursor=page.next_cursor)

    def _view(self, video: CatalogVideo) -> VideoView:
        thumbnails, streams = self.links.describe(video)
        return VideoView(
            id=video.id, owner_id=video.owner_id, title=video.title, description=video.description,
            tags=video.tags, visibility=video.visibility, status=video.status, created_at=video.created_at,
            updated_at=video.updated_at, failure_reason=video.failure_reason, duration_s=video.duration_s,
            width=video.width, height=video.height, renditions=video.renditions, thumbnails=thumbnails,
            streams=streams, playable=video.status == READY, progress=1.0 if video.status == READY else 0.0,
        )
