"""Player-facing URLs of a video's media: plain for public videos, under one short-lived
signed token for unlisted and private ones (relative URIs in playlists then keep it)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, Protocol
from uuid import UUID

from application.media_layout import relative_name
from application.ports import Clock, PlaybackTokens


class LinkedVideo(Protocol):
    """What links are made from: the Video aggregate, a CatalogVideo and a PlaybackInfo all are."""

    @property
    def id(self) -> UUID: ...
    @property
    def visibility(self) -> str: ...
    @property
    def playable(self) -> bool: ...
    @property
    def renditions(self) -> Sequence[Any]: ...
    @property
    def manifests(self) -> Mapping[str, str]: ...
    @property
    def thumbnails(self) -> Mapping[str, str]: ...


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

    def describe(self, video: LinkedVideo) -> tuple[dict[str, str], dict[str, Any]]:
        """(thumbnails, streams) URLs of a playable video; both empty before that. The
        progressive MP4 and the storyboard come last, with `ready`."""
        if not video.playable:
            return {}, {}
        folder = self.folder(video)

        def link(key: str) -> str:
            return f"{folder}/{relative_name(video.id, key)}"

        thumbnails = {name: link(key) for name, key in video.thumbnails.items()}
        streams: dict[str, Any] = {"hls": link(video.manifests["hls"]), "dash": link(video.manifests["dash"])}
        if "mp4" in video.manifests:
            progressive = relative_name(video.id, video.manifests["mp4"])
            quality = progressive.rsplit("/", 1)[-1].removesuffix(".mp4")
            streams["mp4"] = {quality: f"{folder}/{progressive}"}
        return thumbnails, streams
