"""What playback needs to know about a video, read through a cache so that a warm stream or
media request touches neither the event store nor the read model."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar
from uuid import UUID

import msgspec

from application.ports import Cache
from application.videos import Videos
from domain.media import Manifests, Rendition, Thumbnails
from domain.videos import Video, check_visible, is_playable

INFO_TTL_S = 60  # bounds staleness should an invalidation be lost
MANIFEST_TTL_S = 300
MAX_DECODED = 10_000
MAX_DECODED_MANIFESTS = 1_000  # each holds a copy of its bytes


class PlaybackInfo(msgspec.Struct, frozen=True):
    id: UUID
    owner_id: UUID
    visibility: str
    status: str
    deleted: bool
    renditions: list[Rendition]
    manifests: Manifests
    thumbnails: Thumbnails
    plan_id: UUID | None = None

    @property
    def playable(self) -> bool:
        return is_playable(self.status, self.renditions, self.deleted)

    @property
    def manifest_version(self) -> str:
        """Changes whenever the manifests do: they grow while renditions are published."""
        return f"{self.status}:{len(self.renditions)}"

    def check_visible_to(self, actor_id: UUID | None, actor_roles: tuple[str, ...]) -> None:
        check_visible(self, actor_id, actor_roles)


class CachedFile(msgspec.Struct, frozen=True):
    data: bytes
    etag: str
    last_modified: datetime | None


def _info_of(video: Video) -> PlaybackInfo:
    return PlaybackInfo(
        id=video.id, owner_id=video.owner_id, visibility=video.visibility, status=video.status,
        deleted=video.deleted, renditions=list(video.renditions), manifests=video.manifests,
        thumbnails=video.thumbnails, plan_id=video.plan_id,
    )


K = TypeVar("K")
T = TypeVar("T")


class DecodedOnce(Generic[K, T]):
    """The last decoding of each cached value, kept while the cache holds the very same bytes:
    a warm request then skips msgpack altogether. Bounded by clearing when full."""

    def __init__(self, type_: type[T], limit: int) -> None:
        self._type = type_
        self._limit = limit
        self._held: dict[K, tuple[bytes, T]] = {}

    def decode(self, key: K, cached: bytes) -> T:
        held = self._held.get(key)
        if held is not None and held[0] is cached:
            return held[1]
        value = msgspec.msgpack.decode(cached, type=self._type)
        if len(self._held) >= self._limit:
            self._held.clear()
        self._held[key] = (cached, value)
        return value


class PlaybackCache:
    def __init__(self, videos: Videos, cache: Cache) -> None:
        self.videos = videos
        self.cache = cache
        self._infos = DecodedOnce[UUID, PlaybackInfo](PlaybackInfo, MAX_DECODED)
        self._manifests = DecodedOnce[str, CachedFile](CachedFile, MAX_DECODED_MANIFESTS)

    def info(self, video_id: UUID) -> PlaybackInfo:
        """From the cache, else from the event store (and then cached); NotFound if unknown."""
        cached = self.cache.get(f"video:{video_id}")
        if cached is not None:
            return msgspec.msgpack.decode(cached, type=PlaybackInfo)
        info = _info_of(self.videos.get_aggregate(video_id))
        self.cache.set(f"video:{video_id}", msgspec.msgpack.encode(info), INFO_TTL_S)
        return info

    def known_info(self, video_id: UUID) -> PlaybackInfo | None:
        """info, if this process holds it (no I/O); None otherwise."""
        cached = self.cache.peek(f"video:{video_id}")
        return None if cached is None else self._infos.decode(video_id, cached)

    def known_manifest(self, key: str) -> CachedFile | None:
        """manifest, if this process holds it (no I/O); None otherwise."""
        cached = self.cache.peek(f"manifest:{key}")
        return None if cached is None else self._manifests.decode(key, cached)

    def manifest(self, key: str) -> CachedFile | None:
        """A manifest's bytes and validators. key names its version (see manifest_version): a
        manifest is rewritten only when the video's renditions change; a deleted video's are
        never asked for, since its info says deleted first."""
        cached = self.cache.get(f"manifest:{key}")
        return None if cached is None else msgspec.msgpack.decode(cached, type=CachedFile)

    def remember_manifest(self, key: str, file: CachedFile) -> None:
        self.cache.set(f"manifest:{key}", msgspec.msgpack.encode(file), MANIFEST_TTL_S)

    def invalidate(self, video_id: UUID) -> None:
        """Forget what is cached of the video (called when it changes)."""
        forget_video(self.cache, video_id)


def forget_video(cache: Cache, video_id: UUID) -> None:
    """For processes that change videos without serving them (the projector)."""
    cache.delete(f"video:{video_id}")
