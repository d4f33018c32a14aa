"""Audience routes: likes, comments, view beacons, related videos, stats and watch history."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import msgspec
from litestar import Controller, delete, get, patch, post, put
from litestar.params import FromPath, JSONBody, QueryParameter

from adapters.inbound.http.dependencies import BeaconDep, EngagementDep, PrincipalDep
from adapters.inbound.http.schemas import CommentEditRequest, CommentRequest
from application.audience import CommentView
from application.engagement import CommentPage, HistoryPage, VideoStats
from application.video_views import VideoView

Cursor = Annotated[str | None, QueryParameter(max_length=200)]
Limit = Annotated[int, QueryParameter(ge=1, le=100)]


class RelatedVideos(msgspec.Struct):
    items: list[VideoView]


class AudienceController(Controller):
    path = "/api/videos"
    tags = ["audience"]

    @put("/{video_id:uuid}/like", status_code=204, sync_to_thread=True)
    def like(self, video_id: FromPath[UUID], principal: PrincipalDep, engagement: EngagementDep) -> None:
        """Like the video; liking it again changes nothing."""
        engagement.like(principal, video_id)

    @delete("/{video_id:uuid}/like", status_code=204, sync_to_thread=True)
    def unlike(self, video_id: FromPath[UUID], principal: PrincipalDep, engagement: EngagementDep) -> None:
        """Take the like back; nothing to take back changes nothing."""
        engagement.unlike(principal, video_id)

    @get("/{video_id:uuid}/comments", sync_to_thread=True)
    def comments(
        self, video_id: FromPath[UUID], principal: PrincipalDep, engagement: EngagementDep,
        cursor: Cursor = None, limit: Limit = 20,
    ) -> CommentPage:
        """The video's comments, oldest first; deleted ones keep their place with an empty body.
        Bodies are plain text: render them as text."""
        return engagement.comments(principal, video_id, cursor=cursor, limit=limit)

    @post("/{video_id:uuid}/comments", status_code=201, sync_to_thread=True)
    def post_comment(
        self, video_id: FromPath[UUID], data: JSONBody[CommentRequest], principal: PrincipalDep,
        engagement: EngagementDep,
    ) -> CommentView:
        """Comment (1–5000 characters of plain text), or reply to a top-level comment with `parent_id`."""
        return engagement.post_comment(principal, video_id, data.body, data.parent_id)

    @post("/{video_id:uuid}/views", status_code=202)
    async def view(self, video_id: FromPath[UUID], principal: PrincipalDep, beacon: BeaconDep) -> None:
        """A player's playback beacon: counted at most once per viewer and video per 30 minutes."""
        await beacon.viewed(principal, video_id)

    @get("/{video_id:uuid}/related", sync_to_thread=True)
    def related(self, video_id: FromPath[UUID], principal: PrincipalDep, engagement: EngagementDep) -> RelatedVideos:
        """Up to 12 ready videos: most watched by this one's viewers, then sharing its genre and tags."""
        return RelatedVideos(items=engagement.related(principal, video_id))

    @get("/{video_id:uuid}/stats", sync_to_thread=True)
    def stats(self, video_id: FromPath[UUID], principal: PrincipalDep, engagement: EngagementDep) -> VideoStats:
        """Views, likes, comments and views per day (owner, moderator, admin)."""
        return engagement.stats(principal, video_id)


class CommentsController(Controller):
    path = "/api/comments"
    tags = ["audience"]

    @patch("/{comment_id:uuid}", sync_to_thread=True)
    def edit(
        self, comment_id: FromPath[UUID], data: JSONBody[CommentEditRequest], principal: PrincipalDep,
        engagement: EngagementDep,
    ) -> CommentView:
        """Change the text of one's own comment."""
        return engagement.edit_comment(principal, comment_id, data.body)

    @delete("/{comment_id:uuid}", status_code=204, sync_to_thread=True)
    def remove(self, comment_id: FromPath[UUID], principal: PrincipalDep, engagement: EngagementDep) -> None:
        """Delete a comment (its author, the video's owner, a moderator or an admin)."""
        engagement.delete_comment(principal, comment_id)


class HistoryController(Controller):
    path = "/api/users/me/history"
    tags = ["audience"]

    @get("", sync_to_thread=True)
    def history(
        self, principal: PrincipalDep, engagement: EngagementDep, cursor: Cursor = None, limit: Limit = 20,
    ) -> HistoryPage:
        """The caller's watch history, most recently watched first."""
        return engagement.history(principal, cursor=cursor, limit=limit)

    @delete("", status_code=204, sync_to_thread=True)
    def clear(self, principal: PrincipalDep, engagement: EngagementDep) -> None:
        """Forget the caller's watch history."""
        engagement.clear_history(principal)
