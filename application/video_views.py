"""What the api shows of a video (VideoView), built in one place, `video_view`, from whichever
state answers the request: the aggregate (a video's own page, read-your-writes) or the catalog
read model (lists). Depends only on the domain and on media_links, so every reader may import it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol
from uuid import UUID

import msgspec

from application.catalog import CatalogVideo
from application.media_links import MediaLinks, StreamLinks, ThumbnailLinks
from domain.videos import Video


class RenditionView(msgspec.Struct):
    name: str
    width: int
    height: int
    bitrate: int


class VideoFigures(msgspec.Struct, frozen=True):
    view_count: int = 0
    like_count: int = 0
    comment_count: int = 0
    liked_by_me: bool = False


class VideoView(msgspec.Struct):
    id: UUID
    owner_id: UUID
    title: str
    description: str
    tags: list[str]
    visibility: str
    status: str
    created_at: datetime
    updated_at: datetime
    playable: bool = False
    progress: float = 0.0
    failure_reason: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    renditions: list[RenditionView] = []
    thumbnails: ThumbnailLinks = ThumbnailLinks()
    streams: StreamLinks = StreamLinks()
    genre: str | None = None
    view_count: int = 0
    like_count: int = 0
    comment_count: int = 0
    liked_by_me: bool = False


# The state a VideoView is made of: the aggregate (commands' answers, an owner's own reads) or
# the catalog's row (listings).
ShownVideo = Video | CatalogVideo


class FiguresSource(Protocol):
    def figures(self, video_id: UUID, viewer_id: UUID | None) -> VideoFigures:
        """A video's audience figures from the read model (eventually consistent)."""


def video_view(
    video: ShownVideo, links: MediaLinks | None, *, created_at: datetime, updated_at: datetime, progress: float,
    figures: VideoFigures = VideoFigures(),
) -> VideoView:
    """The one mapping from a video's state to what the api shows; links: None leaves out the
    media URLs (an upload's answer, before there are any)."""
    thumbnails, streams = links.describe(video) if links else (ThumbnailLinks(), StreamLinks())
    return VideoView(
        id=video.id, owner_id=video.owner_id, title=video.title, description=video.description,
        tags=list(video.tags), visibility=video.visibility, status=video.status, playable=video.playable,
        progress=progress, created_at=created_at, updated_at=updated_at, failure_reason=video.failure_reason,
        duration_s=video.duration_s, width=video.width, height=video.height,
        renditions=[RenditionView(r.name, r.width, r.height, r.bitrate) for r in video.renditions],
        thumbnails=thumbnails, streams=streams, genre=video.genre, view_count=figures.view_count,
        like_count=figures.like_count, comment_count=figures.comment_count, liked_by_me=figures.liked_by_me,
    )
