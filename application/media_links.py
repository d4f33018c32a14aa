"""Player-facing URLs of a video's media: plain for public videos, under one short-lived
signed token for unlisted and private ones (relative URIs in playlists then keep it)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Protocol
from uuid import UUID

import msgspec

from application.media_layout import relative_name
from application.ports import Clock, PlaybackTokens
from domain.media import Manifests, Rendition, Thumbnails, named, progressive


class ThumbnailLinks(msgspec.Struct, frozen=True, omit_defaults=True):
    poster: str | None = None
    sprite: str | None = None
    storyboard: str | None = None


class StreamLinks(msgspec.Struct, frozen=True, omit_defaults=True):
    hls: str | None = None
    dash: str | None = None
    mp4: dict[str, str] | None = None  # quality → URL of the progressive MP4


class LinkedVideo(Protocol):
    """What links are made from: the Video aggregate, a CatalogVideo and a PlaybackInfo all are."""

    @property
    def id(self) -> UUID: ...
    @property
    def visibility(self) -> str: ...
    @property
    def playable(self) -> bool: ...
    @property
    def renditions(self) -> Sequence[Rendition]: ...
    @property
    def manifests(self) -> Manifests: ...
    @property
    def thumbnails(self) -> Thumbnails: ...


class MediaLinks:
    def __init__(self, tokens: PlaybackTokens, clock: Clock, *, base_url: str = "/media", token_ttl: int = 3600) -> None:
        self.tokens = tokens
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.token_ttl = token_ttl

    def folder(self, video: LinkedVideo) -> str:
        """The URL that a video's relative media names are appended to."""
        if video.visibility == "public":
            return f"{self.base_url}/{video.id}"
        token = self.tokens.issue(video.id, self.clock.now() + timedelta(seconds=self.token_ttl))
        return f"{self.base_url}/t/{token}/{video.id}"

    def url(self, video: LinkedVideo, relative: str) -> str:
        return f"{self.folder(video)}/{relative}"

    def describe(self, video: LinkedVideo) -> tuple[ThumbnailLinks, StreamLinks]:
        """(thumbnails, streams) URLs of a playable video; both empty before that. The
        progressive MP4 and the storyboard come last, with `ready`."""
        if not video.playable:
            return ThumbnailLinks(), StreamLinks()
        folder = self.folder(video)

        def link(key: str) -> str:
            return f"{folder}/{relative_name(video.id, key)}"

        thumbnails = ThumbnailLinks(**{name: link(key) for name, key in named(video.thumbnails).items()})
        mp4 = progressive(video.renditions)
        return thumbnails, StreamLinks(
            **{name: link(key) for name, key in named(video.manifests).items()},
            mp4={mp4.name: link(mp4.mp4)} if mp4 is not None and mp4.mp4 is not None else None,
        )
