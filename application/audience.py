"""The audience of videos: likes and comments (domain state, saved in the videos' event store
beside the videos they are about), and what the read model answers about them, the views
included (see application/analytics.py for how views get there)."""

from __future__ import annotations

import base64
import binascii
from datetime import date, datetime
from typing import Any, Protocol, TypeVar
from uuid import UUID

import msgspec

from application.catalog import CatalogComment, CatalogVideo, check_limit
from application.errors import ValidationError

RELATED_MAX = 12


class CommentAuthor(msgspec.Struct):
    id: UUID
    username: str
    display_name: str


class CommentView(msgspec.Struct, kw_only=True):
    id: UUID
    video_id: UUID
    author: CommentAuthor
    body: str  # plain text: render it as text, never as HTML
    parent_id: UUID | None
    created_at: datetime
    edited_at: datetime | None
    deleted: bool


class CommentRows(msgspec.Struct):
    items: list[tuple[CatalogComment, CommentAuthor | None]]
    next_cursor: str | None


class WatchedRows(msgspec.Struct):
    items: list[tuple[CatalogVideo, datetime]]
    next_cursor: str | None


class DayViews(msgspec.Struct):
    date: date
    views: int


class AudienceReadModel(Protocol):
    """What the api asks the read model about likes, comments, views and histories. Videos that
    are deleted are absent from every answer."""

    def counts(self, video_id: UUID) -> tuple[int, int, int]:
        """(views, likes, comments) of a video; zeros when it has none."""

    def liked_among(self, user_id: UUID, video_ids: list[UUID]) -> set[UUID]:
        """Which of the videos the user likes."""

    def comments(self, video_id: UUID, *, cursor: str | None = None, limit: int = 20) -> CommentRows:
        """A video's comments, oldest first, deleted ones included, with their authors' profiles."""

    def watched(self, user_id: UUID, *, cursor: str | None = None, limit: int = 20) -> WatchedRows:
        """The user's watch history, most recently watched first; one entry per video."""

    def clear_watched(self, user_id: UUID) -> None:
        """Forget the user's watch history."""

    def co_viewed(self, video_id: UUID, limit: int) -> list[CatalogVideo]:
        """Videos the viewers of this one also watched, the most shared audience first."""

    def similar(self, video: CatalogVideo, limit: int) -> list[CatalogVideo]:
        """Videos sharing the genre or tags of this one, the most in common first."""

    def views_by_day(self, video_id: UUID) -> list[DayViews]:
        """Counted views per UTC day, oldest first."""


def encode_position(*values: object) -> str:
    """An opaque cursor over any sort key."""
    return base64.urlsafe_b64encode(msgspec.json.encode(values)).decode()


PositionT = TypeVar("PositionT", bound=tuple[Any, ...])


def decode_position(cursor: str, shape: type[PositionT]) -> PositionT:
    try:
        position: PositionT = msgspec.json.decode(base64.urlsafe_b64decode(cursor.encode("ascii")), type=shape)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise ValidationError("cursor", "not a cursor from this list") from None
    if any(isinstance(value, datetime) and value.tzinfo is None for value in position):
        raise ValidationError("cursor", "not a cursor from this list")
    return position


__all__ = ["check_limit", "RELATED_MAX"]
