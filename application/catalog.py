"""The catalog read model: what the api lists and searches without loading aggregates.

The projector keeps it from the videos' and accounts' notification logs. `VideoCatalog` is
the port the api queries; `CatalogRecorder` is the port the projection writes through, a
tracking recorder, so every view change commits with its log position (exactly once)."""

from __future__ import annotations

import base64
import binascii
import re
from abc import ABC, abstractmethod
from datetime import datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import msgspec
from eventsourcing.persistence import Tracking, TrackingRecorder

from application.errors import ValidationError
from domain.media import Manifests, Rendition, Thumbnails
from domain.videos import is_playable

MAX_PAGE_SIZE = 100
NEWEST, VIEWS, LIKES = "newest", "views", "likes"
SORTS = (NEWEST, VIEWS, LIKES)
SORT_COUNTS = {VIEWS: "view_count", LIKES: "like_count"}
WORD = re.compile(r"\w+")


class CatalogVideo(msgspec.Struct, kw_only=True):
    id: UUID
    owner_id: UUID
    title: str
    description: str
    tags: list[str]
    visibility: str
    status: str
    created_at: datetime
    updated_at: datetime
    failure_reason: str | None = None
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    renditions: list[Rendition] = []
    thumbnails: Thumbnails = Thumbnails()
    manifests: Manifests = Manifests()
    genre: str | None = None
    # Kept by the audience's writers (likes, comments, analytics), not by the video's events.
    view_count: int = 0
    like_count: int = 0
    comment_count: int = 0

    @property
    def deleted(self) -> bool:
        return False  # a deleted video's row is removed

    @property
    def playable(self) -> bool:
        return is_playable(self.status, self.renditions)


class CatalogComment(msgspec.Struct, kw_only=True):
    id: UUID
    video_id: UUID
    author_id: UUID
    body: str
    parent_id: UUID | None
    created_at: datetime
    edited_at: datetime | None = None
    deleted: bool = False


class CatalogPage(msgspec.Struct):
    items: list[CatalogVideo]
    next_cursor: str | None


class PublicProfileView(msgspec.Struct, kw_only=True):
    id: UUID
    username: str
    display_name: str
    bio: str = ""
    avatar_url: str | None = None


class VideoCatalog(Protocol):
    def get(self, video_id: UUID) -> CatalogVideo | None:
        """The video as last projected, whatever its visibility; None when unknown or deleted."""

    def list_public(
        self, *, owner: UUID | None = None, tag: str | None = None, query: str | None = None,
        cursor: str | None = None, limit: int = 20, genre: str | None = None, sort: str = NEWEST,
    ) -> CatalogPage:
        """Public, ready videos, newest first (or most viewed, most liked), filtered by owner, tag,
        genre and words of title, description, tags."""

    def list_for_owner(self, owner: UUID, *, cursor: str | None = None, limit: int = 20) -> CatalogPage:
        """All of one owner's videos, any status or visibility, newest first."""

    def get_profile(self, user_id: UUID) -> PublicProfileView | None:
        """A user's public profile; None when unknown."""


class CatalogRecorder(TrackingRecorder, ABC):
    """Each write records `tracking` in the same transaction; a notification already
    recorded is skipped, so replaying the log never applies an event twice."""

    @abstractmethod
    def add_video(self, video: CatalogVideo, tracking: Tracking) -> None:
        """Insert a newly uploaded video."""

    @abstractmethod
    def update_video(self, video_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        """Set the given CatalogVideo fields of a video."""

    @abstractmethod
    def remove_video(self, video_id: UUID, tracking: Tracking) -> None:
        """Forget a deleted video."""

    @abstractmethod
    def add_profile(self, profile: PublicProfileView, tracking: Tracking) -> None:
        """Insert a newly registered user's public profile."""

    @abstractmethod
    def update_profile(self, user_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        """Set the given PublicProfileView fields of a profile."""

    @abstractmethod
    def set_like(self, video_id: UUID, user_id: UUID, liked: bool, tracking: Tracking) -> None:
        """Record that the user likes the video (or no longer does), keeping its like count."""

    @abstractmethod
    def add_comment(self, comment: CatalogComment, tracking: Tracking) -> None:
        """Insert a new comment, counting it."""

    @abstractmethod
    def update_comment(self, comment_id: UUID, changes: dict[str, Any], tracking: Tracking) -> None:
        """Set the given CatalogComment fields; `deleted` empties the body and uncounts it."""


# --- paging helpers shared by the adapters ------------------------------------------------


def check_limit(limit: int) -> int:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValidationError("limit", f"between 1 and {MAX_PAGE_SIZE}")
    return limit


def check_sort(sort: str) -> str:
    if sort not in SORTS:
        raise ValidationError("sort", f"one of {', '.join(SORTS)}")
    return sort


def encode_cursor(video: CatalogVideo, sort: str = NEWEST) -> str:
    """Opaque to clients: the sort key of the last item shown."""
    key = (video.created_at, video.id) if sort == NEWEST else (getattr(video, SORT_COUNTS[sort]), video.created_at, video.id)
    return base64.urlsafe_b64encode(msgspec.json.encode(key)).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    created_at, video_id = _decode(cursor, tuple[datetime, UUID])
    return created_at, video_id


def decode_count_cursor(cursor: str) -> tuple[int, datetime, UUID]:
    """The (count, created_at, id) key of a list sorted by views or likes."""
    count, created_at, video_id = _decode(cursor, tuple[int, datetime, UUID])
    return count, created_at, video_id


CursorT = TypeVar("CursorT", bound=tuple[Any, ...])


def _decode(cursor: str, shape: type[CursorT]) -> CursorT:
    try:
        key: CursorT = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode("ascii")), type=shape)
    except (binascii.Error, ValueError, msgspec.DecodeError):  # ValueError covers non-ASCII text
        raise ValidationError("cursor", "not a cursor from this list") from None
    if key[-2].tzinfo is None:
        raise ValidationError("cursor", "not a cursor from this list")
    return key


def normalise_tag(tag: str) -> str:
    """Tags are stored case-folded (domain.videos.clean_tags); compare them the same way."""
    return tag.strip().casefold()


def search_words(query: str) -> list[str]:
    """The words of a search box, lower-cased; punctuation only separates them."""
    return [word.casefold() for word in WORD.findall(query)]
