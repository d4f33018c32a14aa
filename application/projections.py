"""The catalog projection: videos' and users' domain events as catalog rows.

One projection class follows both logs (one CatalogFollower each, tracked per application
name); every call is one transaction of view change plus tracking, see CatalogRecorder."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any
from uuid import UUID

from anyio import to_thread
from eventsourcing.application import Application
from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import IntegrityError, Notification, Tracking
from eventsourcing.projection import Projection

from application.catalog import CatalogComment, CatalogRecorder, CatalogVideo, PublicProfileView
from application.following import LogFollower
from domain.comments import Comment
from domain.likes import Like
from domain.users import User
from domain.videos import FAILED, PROCESSING, READY, UPLOADED, Video


class CatalogProjection(Projection[CatalogRecorder]):
    name = "catalog"

    def __init__(self, view: CatalogRecorder, on_video_changed: Callable[[UUID], None] | None = None) -> None:
        super().__init__(view)
        # Told after a video's row committed, e.g. to drop what a cache holds of it.
        self.on_video_changed = on_video_changed or (lambda _: None)

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        # Events the catalog does not show still advance its position, so that waiting for
        # a log's last notification id works. Seen before means recorded before: nothing to do.
        with suppress(IntegrityError):
            self.view.insert_tracking(tracking)

    @process_event.register(Video.Uploaded)
    def _video_uploaded(self, event: Any, tracking: Tracking) -> None:
        self.view.add_video(CatalogVideo(
            id=event.originator_id, owner_id=event.owner_id, title=event.title,
            description=event.description, tags=list(event.tags), visibility=event.visibility,
            status=UPLOADED, created_at=event.timestamp, updated_at=event.timestamp,
            genre=getattr(event, "genre", None),  # events recorded before genres have none
        ), tracking)
        self.on_video_changed(event.originator_id)

    @process_event.register(Video.ProcessingStarted)
    def _video_processing_started(self, event: Any, tracking: Tracking) -> None:
        self._update_video(event, tracking, status=PROCESSING, renditions=[], manifests={})

    @process_event.register(Video.Processed)
    def _video_processed(self, event: Any, tracking: Tracking) -> None:
        self._update_video(
            event, tracking, status=READY, failure_reason=None, duration_s=event.duration_s,
            width=event.width, height=event.height, renditions=event.renditions,
            manifests=event.manifests, thumbnails=event.thumbnails,
        )

    @process_event.register(Video.ProcessingFailed)
    def _video_processing_failed(self, event: Any, tracking: Tracking) -> None:
        self._update_video(event, tracking, status=FAILED, failure_reason=event.reason)

    @process_event.register(Video.RetryRequested)
    def _video_retry_requested(self, event: Any, tracking: Tracking) -> None:
        self._update_video(event, tracking, status=UPLOADED, failure_reason=None, renditions=[], manifests={})

    @process_event.register(Video.ProcessingAbandoned)
    def _video_processing_abandoned(self, event: Any, tracking: Tracking) -> None:
        self._update_video(event, tracking, status=UPLOADED, renditions=[], manifests={})

    @process_event.register(Video.ProcessingRedriven)
    def _video_processing_redriven(self, event: Any, tracking: Tracking) -> None:
        self._update_video(event, tracking)  # still waiting; its wait starts again

    @process_event.register(Video.RetriesGivenUp)
    def _video_retries_given_up(self, event: Any, tracking: Tracking) -> None:
        self._update_video(event, tracking, failure_reason=event.reason)

    @process_event.register(Video.RenditionPublished)
    def _video_rendition_published(self, event: Any, tracking: Tracking) -> None:
        # The listing shows ready videos only; what changes is what playback may serve.
        self._update_video(event, tracking, renditions=event.renditions, manifests=event.manifests,
                           thumbnails=event.thumbnails)

    @process_event.register(Video.DetailsEdited)
    def _video_details_edited(self, event: Any, tracking: Tracking) -> None:
        edited = {"title": event.title, "description": event.description, "tags": event.tags,
                  "visibility": event.visibility}
        changes = {name: value for name, value in edited.items() if value is not None}
        genre = getattr(event, "genre", None)
        if genre is not None:
            changes["genre"] = genre or None  # "" cleared it
        self._update_video(event, tracking, **changes)

    @process_event.register(Video.Deleted)
    def _video_deleted(self, event: Any, tracking: Tracking) -> None:
        self.view.remove_video(event.originator_id, tracking)
        self.on_video_changed(event.originator_id)

    @process_event.register(Like.Liked)
    @process_event.register(Like.Reliked)
    def _liked(self, event: Any, tracking: Tracking) -> None:
        self.view.set_like(event.video_id, event.user_id, True, tracking)

    @process_event.register(Like.Unliked)
    def _unliked(self, event: Any, tracking: Tracking) -> None:
        self.view.set_like(event.video_id, event.user_id, False, tracking)

    @process_event.register(Comment.Posted)
    def _comment_posted(self, event: Any, tracking: Tracking) -> None:
        self.view.add_comment(CatalogComment(
            id=event.originator_id, video_id=event.video_id, author_id=event.author_id, body=event.body,
            parent_id=event.parent_id, created_at=event.timestamp,
        ), tracking)

    @process_event.register(Comment.Edited)
    def _comment_edited(self, event: Any, tracking: Tracking) -> None:
        self.view.update_comment(event.originator_id, {"body": event.body, "edited_at": event.timestamp}, tracking)

    @process_event.register(Comment.Deleted)
    def _comment_deleted(self, event: Any, tracking: Tracking) -> None:
        self.view.update_comment(event.originator_id, {"body": "", "deleted": True}, tracking)

    @process_event.register(User.Registered)
    def _user_registered(self, event: Any, tracking: Tracking) -> None:
        self.view.add_profile(PublicProfileView(
            id=event.originator_id, username=event.username, display_name=event.display_name,
        ), tracking)

    @process_event.register(User.ProfileUpdated)
    def _user_profile_updated(self, event: Any, tracking: Tracking) -> None:
        changes: dict[str, Any] = {name: value for name, value in (
            ("display_name", event.display_name), ("bio", event.bio)) if value is not None}
        if event.avatar_url is not None:
            changes["avatar_url"] = event.avatar_url or None  # "" clears it, as in User
        self.view.update_profile(event.originator_id, changes, tracking)

    def _update_video(self, event: Any, tracking: Tracking, **changes: Any) -> None:
        self.view.update_video(event.originator_id, {**changes, "updated_at": event.timestamp}, tracking)
        self.on_video_changed(event.originator_id)


class CatalogFollower(LogFollower):
    """The projector on one log: each event's view change and its tracking in one transaction,
    so a crash anywhere applies no event twice and loses none."""

    def __init__(self, source: Application[UUID], projection: CatalogProjection, batch_size: int = 200) -> None:
        super().__init__(source, projection.view, batch_size)
        self.projection = projection

    async def follow(self, notifications: Sequence[Notification]) -> None:
        await to_thread.run_sync(self._project, notifications)

    def _project(self, notifications: Sequence[Notification]) -> None:
        for notification in notifications:
            event = self.source.mapper.to_domain_event(notification)
            self.projection.process_event(event, Tracking(self.source.name, notification.id))
