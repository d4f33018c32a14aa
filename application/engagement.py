"""Use cases of the audience: like, comment, and read what the audience did (comments, related
videos, stats, watch history). Likes and comments are aggregates saved in the videos' event
store, so the projector sees them in order with the videos they are about."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar
from uuid import UUID

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import RecordConflictError

from application.accounts import Principal
from application.audience import (
    RELATED_MAX,
    AudienceReadModel,
    CommentAuthor,
    CommentView,
    DayViews,
)
from application.catalog import CatalogComment, CatalogVideo, VideoCatalog
from application.errors import NotFound, PermissionDenied, ValidationError
from application.listing import VideoListing
from application.ports import Clock, IdGenerator
from application.video_views import VideoFigures, VideoView
from application.videos import Videos
from domain.comments import Comment
from domain.likes import Like, like_id
from domain.videos import READY, Video, may_view

AggregateT = TypeVar("AggregateT", bound=Aggregate)


class CommentPage(msgspec.Struct):
    items: list[CommentView]
    next_cursor: str | None


class WatchedVideo(msgspec.Struct):
    viewed_at: datetime
    video: VideoView


class HistoryPage(msgspec.Struct):
    items: list[WatchedVideo]
    next_cursor: str | None


class VideoStats(msgspec.Struct):
    view_count: int
    like_count: int
    comment_count: int
    views_by_day: list[DayViews]


class AudienceFigures:
    """Videos' view, like and comment counts and the caller's like, for VideoView (FiguresSource)."""

    def __init__(self, read_model: AudienceReadModel) -> None:
        self.read_model = read_model

    def figures(self, video_id: UUID, viewer_id: UUID | None) -> VideoFigures:
        views, likes, comments = self.read_model.counts(video_id)
        liked = viewer_id is not None and video_id in self.read_model.liked_among(viewer_id, [video_id])
        return VideoFigures(view_count=views, like_count=likes, comment_count=comments, liked_by_me=liked)


class Engagement:
    def __init__(
        self, videos: Videos, catalog: VideoCatalog, read_model: AudienceReadModel, listing: VideoListing,
        clock: Clock, ids: IdGenerator,
    ) -> None:
        self.videos = videos
        self.catalog = catalog
        self.read_model = read_model
        self.listing = listing
        self.clock = clock
        self.ids = ids

    # --- likes -------------------------------------------------------------------------

    def like(self, principal: Principal, video_id: UUID) -> None:
        """Like a video the caller may see; liking it again changes nothing."""
        self._visible_video(principal, video_id)
        self._save_like(video_id, principal.user_id, liked=True)

    def unlike(self, principal: Principal, video_id: UUID) -> None:
        """Take a like back; nothing to take back changes nothing."""
        self._visible_video(principal, video_id)
        self._save_like(video_id, principal.user_id, liked=False)

    def _save_like(self, video_id: UUID, user_id: UUID, *, liked: bool) -> None:
        for attempt in range(2):  # a concurrent like of the same pair wins once; look again
            like = self._get(like_id(video_id, user_id), Like)
            if like is None and liked:
                like = Like(video_id=video_id, user_id=user_id)
            elif like is None or not (like.like() if liked else like.unlike()):
                return
            try:
                self.videos.save(like)
                return
            except RecordConflictError:
                if attempt:
                    raise

    # --- comments ------------------------------------------------------------------------

    def post_comment(self, principal: Principal, video_id: UUID, body: str, parent_id: UUID | None) -> CommentView:
        """Comment on (or reply to a comment of) a video the caller may see."""
        self._visible_video(principal, video_id)
        parent = self._get(parent_id, Comment) if parent_id is not None else None
        if parent_id is not None and parent is None:
            raise ValidationError("parent_id", "not a comment of this video")
        comment = Comment.post(self.ids.new_id(), video_id, principal.user_id, body, parent)
        self.videos.save(comment)
        return self._comment_view(comment, principal)

    def edit_comment(self, principal: Principal, comment_id: UUID, body: str) -> CommentView:
        """Change the text of one's own comment."""
        comment = self._visible_comment(principal, comment_id)
        comment.edit(principal.user_id, body)
        self.videos.save(comment)
        return self._comment_view(comment, principal)

    def delete_comment(self, principal: Principal, comment_id: UUID) -> None:
        """The author, the video's owner, a moderator or an admin; it keeps its place, emptied."""
        comment = self._visible_comment(principal, comment_id)
        video = self.videos.get_aggregate(comment.video_id)
        comment.delete(principal.user_id, principal.roles, video.owner_id)
        self.videos.save(comment)

    def comments(self, principal: Principal, video_id: UUID, *, cursor: str | None = None, limit: int = 20) -> CommentPage:
        """A video's comments, oldest first, for whoever may see the video."""
        self._visible_video(principal, video_id)
        rows = self.read_model.comments(video_id, cursor=cursor, limit=limit)
        return CommentPage(
            items=[_shown_comment(comment, author) for comment, author in rows.items], next_cursor=rows.next_cursor,
        )

    def _comment_view(self, comment: Comment, principal: Principal) -> CommentView:
        profile = self.catalog.get_profile(comment.author_id)
        author = (CommentAuthor(profile.id, profile.username, profile.display_name) if profile
                  else CommentAuthor(principal.user_id, principal.username, principal.username))
        return _shown_comment(CatalogComment(
            id=comment.id, video_id=comment.video_id, author_id=comment.author_id, body=comment.body,
            parent_id=comment.parent_id, created_at=comment.created_on,
            edited_at=comment.modified_on if comment.edited else None, deleted=comment.deleted,
        ), author)

    def _visible_comment(self, principal: Principal, comment_id: UUID) -> Comment:
        comment = self._get(comment_id, Comment)
        if comment is None or comment.deleted:
            raise NotFound("no such comment")
        try:
            self._visible_video(principal, comment.video_id)
        except NotFound:
            raise NotFound("no such comment") from None
        return comment

    # --- what the audience did ---------------------------------------------------------------

    def related(self, principal: Principal, video_id: UUID) -> list[VideoView]:
        """Up to 12 ready videos the caller may see: watched by this one's viewers first, then
        those sharing its genre and tags; never the video itself."""
        self._visible_video(principal, video_id)
        shown = self.catalog.get(video_id)
        if shown is None:
            return []
        related: dict[UUID, CatalogVideo] = {}
        candidates = [*self.read_model.co_viewed(video_id, RELATED_MAX * 3),
                      *self.read_model.similar(shown, RELATED_MAX * 3)]
        for video in candidates:
            if len(related) == RELATED_MAX:
                break
            if video.id != video_id and video.id not in related and _listable_to(video, principal):
                related[video.id] = video
        return self.listing.views(list(related.values()), principal.user_id)

    def stats(self, principal: Principal, video_id: UUID) -> VideoStats:
        """Counts and views per day, for the owner, moderators and admins."""
        video = self._visible_video(principal, video_id)
        if not video.may_edit(principal.user_id, principal.roles):
            raise PermissionDenied("only the owner, a moderator or an admin may read a video's stats")
        views, likes, comments = self.read_model.counts(video_id)
        return VideoStats(view_count=views, like_count=likes, comment_count=comments,
                          views_by_day=self.read_model.views_by_day(video_id))

    def history(self, principal: Principal, *, cursor: str | None = None, limit: int = 20) -> HistoryPage:
        """The caller's watch history, most recently watched first, of videos they may still see."""
        rows = self.read_model.watched(principal.user_id, cursor=cursor, limit=limit)
        visible = [(video, at) for video, at in rows.items if _visible_in_catalog(video, principal)]
        views = self.listing.views([video for video, _ in visible], principal.user_id)
        return HistoryPage(
            items=[WatchedVideo(viewed_at=at, video=view) for (_, at), view in zip(visible, views, strict=True)],
            next_cursor=rows.next_cursor,
        )

    def clear_history(self, principal: Principal) -> None:
        """Forget the caller's watch history."""
        self.read_model.clear_watched(principal.user_id)

    # --- helpers -----------------------------------------------------------------------------

    def _visible_video(self, principal: Principal, video_id: UUID) -> Video:
        video = self.videos.get_aggregate(video_id)
        video.check_visible_to(principal.user_id, principal.roles)
        return video

    def _get(self, aggregate_id: UUID, kind: type[AggregateT]) -> AggregateT | None:
        try:
            aggregate: object = self.videos.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        return aggregate if isinstance(aggregate, kind) else None


def _shown_comment(comment: CatalogComment, author: CommentAuthor | None) -> CommentView:
    return CommentView(
        id=comment.id, video_id=comment.video_id,
        author=author or CommentAuthor(comment.author_id, "", ""), body="" if comment.deleted else comment.body,
        parent_id=comment.parent_id, created_at=comment.created_at, edited_at=comment.edited_at,
        deleted=comment.deleted,
    )


def _visible_in_catalog(video: CatalogVideo, principal: Principal) -> bool:
    return may_view(video, principal.user_id, principal.roles)


def _listable_to(video: CatalogVideo, principal: Principal) -> bool:
    """Recommended: ready public videos, and the caller's own."""
    return video.status == READY and (video.visibility == "public" or video.owner_id == principal.user_id)
