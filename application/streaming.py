"""Streaming: which file answers a play request, and who may fetch which media file."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from application.accounts import Principal
from application.errors import Conflict, NotFound, PermissionDenied, ValidationError
from application.media_layout import is_safe_media_name, object_key, plan_of, relative_name
from application.media_links import MediaLinks
from application.playback import PlaybackCache, PlaybackInfo
from domain.media import progressive
from domain.videos import READY

FORMATS = ("hls", "dash", "mp4")
MAX_KNOWN_FILES = 10_000
ACCEPT_FORMATS = {"application/vnd.apple.mpegurl": "hls", "application/dash+xml": "dash", "video/mp4": "mp4"}


class NotReady(Conflict):
    def __init__(self, status: str) -> None:
        super().__init__(f"the video is {status}; it has no playable streams yet")
        self.problem_extra = {"video_status": status}


class QualityNotAvailable(NotFound):
    def __init__(self, quality: str, available: list[str]) -> None:
        super().__init__(f"no {quality} rendition; available: {', '.join(available) or 'none'}")
        self.problem_extra = {"available": available}


@dataclass(frozen=True)
class StreamTarget:
    key: str  # the object in storage
    url: str  # where a player fetches it (and its neighbours, by relative URIs)
    public: bool


@dataclass(frozen=True)
class MediaFile:
    key: str
    public: bool  # cacheable by shared caches (a public video at its unsigned path)
    final: bool = True  # False while the video's manifests may still grow
    version: str = ""  # of the video's manifests, for caching them


def format_from_accept(accept: str | None) -> str:
    """The first streaming media type the client accepts; HLS when it names none."""
    for part in (accept or "").split(","):
        media_type = part.split(";")[0].strip().lower()
        if media_type in ACCEPT_FORMATS:
            return ACCEPT_FORMATS[media_type]
    return "hls"


class Streaming:
    def __init__(self, playback: PlaybackCache, links: MediaLinks, *, redirects: bool = True) -> None:
        self.playback = playback
        self.links = links
        self.tokens = links.tokens
        self.redirects = redirects  # off: the stream endpoint serves the bytes itself
        self._public_files: dict[tuple[UUID, str], tuple[PlaybackInfo, MediaFile]] = {}

    def stream(self, principal: Principal, video_id: UUID, fmt: str, quality: str = "auto") -> StreamTarget:
        """The media file (and its URL) that plays the video in the format and quality asked for."""
        if fmt not in FORMATS:
            raise ValidationError("format", f"one of {', '.join(FORMATS)}")
        video = self.playback.info(video_id)
        video.check_visible_to(principal.user_id, principal.roles)
        if not video.playable:
            raise NotReady(video.status)
        relative = self._file_for(video, fmt, quality)
        return StreamTarget(
            key=object_key(video.id, relative), url=self.links.url(video, relative),
            public=video.visibility == "public",
        )

    def _file_for(self, video: PlaybackInfo, fmt: str, quality: str) -> str:
        names = [rendition.name for rendition in video.renditions]
        if fmt == "mp4":
            mp4 = progressive(video.renditions)
            if mp4 is None or mp4.mp4 is None:
                raise NotReady(video.status)  # the progressive MP4 is assembled last
            if quality not in ("auto", mp4.name):
                raise QualityNotAvailable(quality, [mp4.name])
            return relative_name(video.id, mp4.mp4)
        if quality != "auto" and quality not in names:
            raise QualityNotAvailable(quality, names)
        if fmt == "hls" and quality != "auto":
            rendition = next(r for r in video.renditions if r.name == quality)
            if rendition.hls:
                return relative_name(video.id, rendition.hls)
        # DASH has one manifest for every rung; the player picks within it.
        manifest = video.manifests.hls if fmt == "hls" else video.manifests.dash
        assert manifest is not None  # a playable video's are recorded with its first rendition
        return relative_name(video.id, manifest)

    def media_file(self, video_id: UUID, relative: str, token: str | None) -> MediaFile:
        """The object behind /media/[t/{token}/]{id}/{relative}, if the caller may have it."""
        return self._media_file(video_id, relative, token, self.playback.info)

    def known_media_file(self, video_id: UUID, relative: str, token: str | None) -> MediaFile | None:
        """media_file, when the video's playback info is in this process's memory (no I/O, so
        an event loop may call it); None when media_file must be asked. A public file's answer
        is kept while its video's info stays the same object (see DecodedOnce)."""
        known = self.playback.known_info(video_id)
        if known is None:
            return None
        if token is None and (held := self._public_files.get((video_id, relative))) and held[0] is known:
            return held[1]
        file = self._media_file(video_id, relative, token, lambda _: known)
        if token is None:
            if len(self._public_files) >= MAX_KNOWN_FILES:
                self._public_files.clear()
            self._public_files[(video_id, relative)] = (known, file)
        return file

    def _media_file(
        self, video_id: UUID, relative: str, token: str | None, info_of: Callable[[UUID], PlaybackInfo],
    ) -> MediaFile:
        if not is_safe_media_name(relative):
            raise NotFound("no such media file")
        if token is not None and self.tokens.verify(token) != video_id:
            raise PermissionDenied("this playback token is for another video")
        try:
            video = info_of(video_id)
        except NotFound:
            raise NotFound("no such media file") from None
        if not video.playable or not _published(video, relative):
            raise NotFound("no such media file")
        if video.visibility != "public" and token is None:
            raise NotFound("no such media file")
        return MediaFile(
            key=object_key(video_id, relative), public=video.visibility == "public" and token is None,
            final=video.status == READY, version=video.manifest_version,
        )


def _published(video: PlaybackInfo, relative: str) -> bool:
    """Only the current plan's files, and while processing only those of published renditions."""
    plan = plan_of(relative)
    if plan is None:
        return relative.startswith("thumbnails/") or video.plan_id is None  # before plans existed
    if plan != video.plan_id:
        return False
    if video.status == READY:
        return True
    parts = relative.split("/")
    if parts[1] == "thumbnails":
        return True  # the poster comes with the first rendition; the rest do not exist before ready
    if parts[1] != "cmaf":
        return False  # the progressive MP4 is assembled last
    if len(parts) == 3:
        return True  # manifests, which list only what is published
    return parts[2] == "audio" or parts[2] in {rendition.name for rendition in video.renditions}
