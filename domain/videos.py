"""Videos: upload, processing outcome, editing, deletion, and who may do what."""

from __future__ import annotations

from collections.abc import Collection, Sequence, Sized
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, NotFound, PermissionDenied, ValidationError
from domain.genres import check_genre
from domain.ladder import LADDER, Rung, rungs_for_source
from domain.media import Manifests, Rendition, Thumbnails, upcast_untyped
from domain.users import ADMIN, MODERATOR, USER

UPLOADED, PROCESSING, READY, FAILED = "uploaded", "processing", "ready", "failed"
# How an attempt ended: exactly one of these per attempt (see Video.outcomes).
PROCESSED, ABANDONED = "processed", "abandoned"
VISIBILITIES = ("public", "unlisted", "private")
TITLE_MAX, DESCRIPTION_MAX, TAG_MAX, TAGS_MAX = 200, 5000, 32, 20
UPLOADER_ROLES = (USER, MODERATOR, ADMIN)
STAFF_ROLES = (MODERATOR, ADMIN)


def _has_control_characters(text: str, allowed: str = "") -> bool:
    return any((ord(ch) < 32 or ord(ch) == 127) and ch not in allowed for ch in text)


def clean_title(title: str) -> str:
    title = title.strip()
    if not title:
        raise ValidationError("title", "must not be blank")
    if len(title) > TITLE_MAX:
        raise ValidationError("title", f"at most {TITLE_MAX} characters")
    if _has_control_characters(title):
        raise ValidationError("title", "control characters are not allowed")
    return title


def clean_description(description: str) -> str:
    if len(description) > DESCRIPTION_MAX:
        raise ValidationError("description", f"at most {DESCRIPTION_MAX} characters")
    if _has_control_characters(description, allowed="\n\r\t"):
        raise ValidationError("description", "control characters are not allowed")
    return description.strip()


def clean_tags(tags: list[str]) -> list[str]:
    """Trimmed, case-folded, de-duplicated in order; blanks dropped."""
    cleaned: list[str] = []
    for tag in tags:
        if _has_control_characters(tag):
            raise ValidationError("tags", "control characters are not allowed")
        tag = tag.strip().casefold()
        if len(tag) > TAG_MAX:
            raise ValidationError("tags", f"each tag at most {TAG_MAX} characters")
        if tag and tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > TAGS_MAX:
        raise ValidationError("tags", f"at most {TAGS_MAX} tags")
    return cleaned


def split_tags(text: str) -> list[str]:
    return clean_tags(text.split(","))


def check_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise ValidationError("visibility", f"one of {', '.join(VISIBILITIES)}")
    return visibility


def may_upload(roles: tuple[str, ...] | list[str]) -> bool:
    return any(role in UPLOADER_ROLES for role in roles)


def may_edit(owner_id: UUID, actor_id: UUID, actor_roles: tuple[str, ...]) -> bool:
    return actor_id == owner_id or any(role in STAFF_ROLES for role in actor_roles)


class Viewable(Protocol):
    """Whatever describes a video's audience: the aggregate, the catalog's row, the playback info."""

    @property
    def owner_id(self) -> UUID: ...
    @property
    def visibility(self) -> str: ...
    @property
    def deleted(self) -> bool: ...


def may_view(video: Viewable, actor_id: UUID | None, actor_roles: tuple[str, ...]) -> bool:
    """Deleted videos are nobody's; private ones are their owner's and the staff's."""
    if video.deleted:
        return False
    if video.visibility != "private":
        return True
    return actor_id is not None and may_edit(video.owner_id, actor_id, actor_roles)


def check_visible(video: Viewable, actor_id: UUID | None, actor_roles: tuple[str, ...]) -> None:
    """Who may not see a video is not told it exists."""
    if not may_view(video, actor_id, actor_roles):
        raise NotFound("no such video")


def is_playable(status: str, renditions: Sized, deleted: bool = False) -> bool:
    """At least one rendition can be streamed, possibly before the video is ready."""
    return not deleted and status in (PROCESSING, READY) and len(renditions) > 0


class Video(Aggregate):
    # The events other modules name are declared, so that a type checker sees them and their
    # fields; each keeps the name (hence the stored topic, `domain.videos:Video.<Name>`) and the
    # fields the decorated method's parameters gave it. The others are made by `@event("Name")`.
    class Uploaded(Aggregate.Created):
        owner_id: UUID
        title: str
        description: str
        tags: list[str]
        visibility: str
        source_key: str
        source_size: int
        source_content_type: str
        source_sha256: str
        genre: str | None
        source_container: str | None

    @event(Uploaded)
    def __init__(
        self, id: UUID, owner_id: UUID, title: str, description: str, tags: list[str],
        visibility: str, source_key: str, source_size: int, source_content_type: str,
        source_sha256: str, genre: str | None = None, source_container: str | None = None,
    ) -> None:
        self.genre = genre  # events recorded before genres existed have none
        # The container family the upload's inspection vetted (e.g. "mp4"); processing opens the
        # source with that demuxer forced. None for videos uploaded before it was recorded.
        self.source_container = source_container
        self.owner_id = owner_id
        self.title = title
        self.description = description
        self.tags = tags
        self.visibility = visibility
        self.source_key = source_key
        self.source_size = source_size
        self.source_content_type = source_content_type
        self.source_sha256 = source_sha256
        self.status = UPLOADED
        self.deleted = False
        self.attempts = 0
        self.failure_reason: str | None = None
        self.retryable = False
        self.duration_s: float | None = None
        self.width: int | None = None
        self.height: int | None = None
        self.renditions: list[Rendition] = []
        self.manifests = Manifests()
        self.thumbnails = Thumbnails()
        self.plan_id: UUID | None = None
        self.outcomes: dict[int, str] = {}  # attempt -> processed | failed | abandoned
        self.automatic_retries = 0  # since the upload or the last retry by hand
        self.progressed_at: datetime | None = None  # None: not since the upload

    # eventsourcing sets modified_on after applying each event, so this is where an event's
    # time is known: processing events mark it as the video's last processing progress.
    @property
    def modified_on(self) -> datetime:
        return self._modified_on

    @modified_on.setter
    def modified_on(self, value: datetime) -> None:
        self._modified_on = value
        if getattr(self, "_progressing", False):
            self.progressed_at, self._progressing = value, False

    def _progress(self) -> None:
        self._progressing = True

    @property
    def last_progress(self) -> datetime:
        """When its processing last moved: an upload, an attempt's step, an outcome, a re-drive."""
        return self.progressed_at or self.created_on

    @classmethod
    def upload(
        cls, video_id: UUID, owner_id: UUID, owner_roles: tuple[str, ...], *, title: str,
        description: str, tags: list[str], visibility: str, source_key: str, source_size: int,
        source_content_type: str, source_sha256: str, genre: str | None = None,
        source_container: str | None = None,
    ) -> Video:
        if not may_upload(owner_roles):
            raise PermissionDenied("your account may not upload videos")
        return cls(
            id=video_id, owner_id=owner_id, title=clean_title(title),
            description=clean_description(description), tags=clean_tags(tags),
            visibility=check_visibility(visibility), source_key=source_key,
            source_size=source_size, source_content_type=source_content_type,
            source_sha256=source_sha256, genre=check_genre(genre) if genre else None,
            source_container=source_container,
        )

    # --- who may do what --------------------------------------------------------

    def may_edit(self, actor_id: UUID, actor_roles: tuple[str, ...]) -> bool:
        return may_edit(self.owner_id, actor_id, actor_roles)

    def may_view(self, actor_id: UUID | None, actor_roles: tuple[str, ...]) -> bool:
        return may_view(self, actor_id, actor_roles)

    def check_visible_to(self, actor_id: UUID | None, actor_roles: tuple[str, ...]) -> None:
        check_visible(self, actor_id, actor_roles)

    def check_editable_by(self, actor_id: UUID, actor_roles: tuple[str, ...]) -> None:
        self.check_visible_to(actor_id, actor_roles)
        if not self.may_edit(actor_id, actor_roles):
            raise PermissionDenied("only the owner, a moderator or an admin may change this video")

    # --- processing ---------------------------------------------------------------

    @property
    def needs_processing(self) -> bool:
        """Whether a worker should (still) transcode it: new, or abandoned mid-way by a dead worker."""
        return not self.deleted and self.status in (UPLOADED, PROCESSING)

    def rungs_for(self, width: int, height: int, ladder: Sequence[Rung] = LADDER) -> tuple[Rung, ...]:
        return rungs_for_source(width, height, ladder)

    @property
    def playable(self) -> bool:
        return is_playable(self.status, self.renditions, self.deleted)

    @property
    def has_plan(self) -> bool:
        """The current attempt's work is planned (its tasks are out), so nobody plans it again."""
        return self.status == PROCESSING and self.plan_id is not None

    def start_processing(self) -> int:
        """Begin an attempt; a video left `processing` by a dead worker is taken over, and the
        attempt it was in is recorded as abandoned."""
        if not self.needs_processing:
            raise Conflict(f"video is {self.status}; nothing to process")
        if self.status == PROCESSING:
            self._abandon("taken over by another worker", redrive=False)
        self._processing_started(attempt=self.attempts + 1)
        return self.attempts

    class ProcessingStarted(Aggregate.Event):
        attempt: int

    @event(ProcessingStarted)
    def _processing_started(self, attempt: int) -> None:
        self.attempts = attempt
        self.status = PROCESSING
        self.plan_id = None
        self.renditions, self.manifests = [], Manifests()
        self._progress()

    # --- nothing stays stuck ----------------------------------------------------------

    def stalled(self, now: datetime, lease: timedelta, job_progressed_at: datetime | None = None) -> bool:
        """Waiting for processing (uploaded or processing) with no progress for longer than the
        lease; job_progressed_at: when the current plan's last task was recorded."""
        if self.deleted or self.status not in (UPLOADED, PROCESSING):
            return False
        latest = max(self.last_progress, job_progressed_at or self.last_progress)
        return now - latest > lease

    def take_over(self, now: datetime, lease: timedelta, job_progressed_at: datetime | None = None) -> bool:
        """Re-drive a stalled video: an attempt in progress is recorded as abandoned (naming its
        number) and the video waits to be planned again; an upload nobody started is announced
        again. False when it is not stalled."""
        if not self.stalled(now, lease, job_progressed_at):
            return False
        reason = f"no processing progress for {int(lease.total_seconds())} s"
        if self.status == PROCESSING:
            self._abandon(reason, redrive=True)
        else:
            self._processing_redriven(
                reason=reason, after_attempt=self.attempts, owner_id=self.owner_id, source_key=self.source_key,
                source_size=self.source_size, source_content_type=self.source_content_type,
            )
        return True

    def _abandon(self, reason: str, redrive: bool) -> None:
        self._processing_abandoned(
            attempt=self.attempts, reason=reason, redrive=redrive, owner_id=self.owner_id,
            source_key=self.source_key, source_size=self.source_size, source_content_type=self.source_content_type,
        )

    class ProcessingAbandoned(Aggregate.Event):
        attempt: int
        reason: str
        redrive: bool
        owner_id: UUID
        source_key: str
        source_size: int
        source_content_type: str

    @event(ProcessingAbandoned)
    def _processing_abandoned(
        self, attempt: int, reason: str, redrive: bool, owner_id: UUID, source_key: str, source_size: int,
        source_content_type: str,
    ) -> None:
        """redrive: the relay announces the video again (False when a new attempt starts at once)."""
        self.outcomes[attempt] = ABANDONED
        self.status = UPLOADED
        self.plan_id = None
        self.renditions, self.manifests = [], Manifests()
        self._progress()

    class ProcessingRedriven(Aggregate.Event):
        reason: str
        after_attempt: int
        owner_id: UUID
        source_key: str
        source_size: int
        source_content_type: str

    @event(ProcessingRedriven)
    def _processing_redriven(
        self, reason: str, after_attempt: int, owner_id: UUID, source_key: str, source_size: int,
        source_content_type: str,
    ) -> None:
        """An upload nobody started (its announcement lost): the relay announces it again."""
        self._progress()

    @property
    def settled(self) -> bool:
        """Nothing more happens to it by itself: ready, failed for good (a failure that can never
        succeed, or automatic retries given up), or deleted. A retryable failure is not settled:
        the sweep retries it, and that retry begins another attempt."""
        return self.deleted or self.status == READY or (self.status == FAILED and not self.retryable)

    def retry_automatically(self, now: datetime, delays: Sequence[timedelta]) -> str | None:
        """A retryable failure is retried after delays[n] (n: automatic retries so far), and
        given up with a final reason once they are used up. Returns `retried`, `given up`, or
        None when nothing is due."""
        if self.deleted or self.status != FAILED or not self.retryable:
            return None
        if self.automatic_retries >= len(delays):
            self._retries_given_up(
                reason=f"gave up after {self.automatic_retries} automatic retries: {self.failure_reason}"[:500])
            return "given up"
        if now - self.last_progress < delays[self.automatic_retries]:
            return None
        self._request_retry(automatic=True)
        return "retried"

    class RetriesGivenUp(Aggregate.Event):
        reason: str

    @event(RetriesGivenUp)
    def _retries_given_up(self, reason: str) -> None:
        self.failure_reason = reason
        self.retryable = False
        self._progress()

    def plan_processing(self, plan_id: UUID, *, duration_s: float, width: int, height: int) -> None:
        """Record the plan of the current attempt: from now on its tasks are the work."""
        self._check_processing()
        if self.plan_id is not None:
            raise Conflict("this attempt is planned already")
        self._processing_planned(plan_id=plan_id, attempt=self.attempts, duration_s=duration_s, width=width, height=height)

    @event("ProcessingPlanned")
    def _processing_planned(self, plan_id: UUID, attempt: int, duration_s: float, width: int, height: int) -> None:
        self.plan_id = plan_id
        self.duration_s, self.width, self.height = duration_s, width, height
        self._progress()

    def _check_processing(self, plan_id: UUID | None = None) -> None:
        if self.deleted or self.status != PROCESSING:
            raise Conflict(f"video is {self.status}; not processing")
        if plan_id is not None and plan_id != self.plan_id:
            raise Conflict("that plan is not the video's current one")

    def publish_renditions(
        self, plan_id: UUID, renditions: list[Rendition], manifests: Manifests, thumbnails: Thumbnails
    ) -> None:
        """Renditions whose every segment exists become streamable; manifests listing them
        are written before this is recorded. renditions: every streamable one so far."""
        self._check_processing(plan_id)
        if {r.name for r in renditions} <= {r.name for r in self.renditions}:
            return  # published already, or a late writer with an older view: never shrink
        self._renditions_published(renditions=renditions, manifests=manifests, thumbnails=thumbnails)

    class RenditionPublished(Aggregate.Event):
        renditions: list[Rendition]
        manifests: Manifests
        thumbnails: Thumbnails
        class_version = 2  # 1: plain dicts, the progressive MP4 in manifests
        upcast_v1_v2 = staticmethod(upcast_untyped)

    @event(RenditionPublished)
    def _renditions_published(self, renditions: list[Rendition], manifests: Manifests, thumbnails: Thumbnails) -> None:
        self.renditions, self.manifests = renditions, manifests
        self.thumbnails = self.thumbnails.merged(thumbnails)
        self._progress()

    def record_processed(
        self, *, duration_s: float, width: int, height: int, renditions: list[Rendition],
        manifests: Manifests, thumbnails: Thumbnails, plan_id: UUID | None = None,
    ) -> None:
        """renditions: every rung, one of them with its progressive MP4."""
        if self.deleted or self.status != PROCESSING:
            raise Conflict(f"video is {self.status}; cannot record a result")
        if plan_id is not None and plan_id != self.plan_id:
            raise Conflict("that plan is not the video's current one")
        if not renditions or manifests.hls is None or manifests.dash is None:
            raise Conflict("a processed video needs renditions and both manifests")
        self._processed(
            duration_s=duration_s, width=width, height=height, renditions=renditions,
            manifests=manifests, thumbnails=thumbnails,
        )

    class Processed(Aggregate.Event):
        duration_s: float
        width: int
        height: int
        renditions: list[Rendition]
        manifests: Manifests
        thumbnails: Thumbnails
        class_version = 2  # 1: plain dicts, the progressive MP4 in manifests
        upcast_v1_v2 = staticmethod(upcast_untyped)

    @event(Processed)
    def _processed(
        self, duration_s: float, width: int, height: int, renditions: list[Rendition],
        manifests: Manifests, thumbnails: Thumbnails,
    ) -> None:
        self.duration_s = duration_s
        self.width = width
        self.height = height
        self.renditions = renditions
        self.manifests = manifests
        self.thumbnails = thumbnails
        self.status = READY
        self.failure_reason = None
        self.outcomes[self.attempts] = PROCESSED
        self._progress()

    def record_failure(self, reason: str, retryable: bool, plan_id: UUID | None = None, attempt: int | None = None) -> None:
        """attempt (or plan_id): whose failure it is; a superseded attempt's never ends the current one."""
        if self.deleted or self.status != PROCESSING:
            raise Conflict(f"video is {self.status}; cannot record a failure")
        if plan_id is not None and plan_id != self.plan_id:
            raise Conflict("a task of a superseded plan failed; the current attempt goes on")
        if attempt is not None and attempt != self.attempts:
            raise Conflict(f"attempt {attempt} failed after attempt {self.attempts} took over; that one goes on")
        self._processing_failed(reason=reason[:500], attempt=self.attempts, retryable=retryable)

    class ProcessingFailed(Aggregate.Event):
        reason: str
        attempt: int
        retryable: bool

    @event(ProcessingFailed)
    def _processing_failed(self, reason: str, attempt: int, retryable: bool) -> None:
        self.status = FAILED
        self.failure_reason = reason
        self.retryable = retryable
        self.outcomes[attempt] = FAILED
        self._progress()

    def retry(self, actor_id: UUID, actor_roles: tuple[str, ...]) -> None:
        """Re-drive a failed video's processing (owner, moderators, admins): it waits to be
        planned again, under a new plan, as if just uploaded."""
        self.check_editable_by(actor_id, actor_roles)
        if self.status != FAILED:
            raise Conflict(f"only a failed video can be retried; this one is {self.status}")
        self._request_retry(automatic=False)

    def _request_retry(self, automatic: bool) -> None:
        self._retry_requested(
            after_attempt=self.attempts, owner_id=self.owner_id, source_key=self.source_key,
            source_size=self.source_size, source_content_type=self.source_content_type, automatic=automatic,
        )

    class RetryRequested(Aggregate.Event):
        after_attempt: int
        owner_id: UUID
        source_key: str
        source_size: int
        source_content_type: str
        automatic: bool  # absent from events recorded before automatic retries

    @event(RetryRequested)
    def _retry_requested(
        self, after_attempt: int, owner_id: UUID, source_key: str, source_size: int, source_content_type: str,
        automatic: bool = False,  # absent from events recorded before automatic retries
    ) -> None:
        """Carries what the relay announces again as VideoUploaded. A retry by hand starts the
        automatic ones' count again."""
        self.automatic_retries = self.automatic_retries + 1 if automatic else 0
        self.status = UPLOADED
        self.failure_reason = None
        self.retryable = False
        self.plan_id = None
        self.renditions, self.manifests = [], Manifests()
        self._progress()

    # --- editing and deletion -------------------------------------------------------

    def edit_details(
        self, actor_id: UUID, actor_roles: tuple[str, ...], *, title: str | None = None,
        description: str | None = None, tags: list[str] | None = None, visibility: str | None = None,
        genre: str | None = None, cleared: Collection[str] = (),
    ) -> None:
        """None leaves a field as it is; a field named in `cleared` (a JSON merge patch's null) is
        emptied, which the required title and visibility cannot be."""
        self.check_editable_by(actor_id, actor_roles)
        for field in ("title", "visibility"):
            if field in cleared:
                raise ValidationError(field, "is required and cannot be null")
        changes: dict[str, Any] = {
            "title": clean_title(title) if title is not None else None,
            "description": "" if "description" in cleared else (
                clean_description(description) if description is not None else None),
            "tags": [] if "tags" in cleared else (clean_tags(tags) if tags is not None else None),
            "visibility": check_visibility(visibility) if visibility is not None else None,
            "genre": "" if "genre" in cleared else (check_genre(genre) if genre is not None else None),
        }
        if any(value is not None for value in changes.values()):
            self._details_edited(**changes)

    class DetailsEdited(Aggregate.Event):
        title: str | None
        description: str | None
        tags: list[str] | None
        visibility: str | None
        genre: str | None  # absent from events recorded before genres

    @event(DetailsEdited)
    def _details_edited(
        self, title: str | None, description: str | None, tags: list[str] | None, visibility: str | None,
        genre: str | None = None,  # "" clears it; absent from events recorded before genres
    ) -> None:
        self.title = title if title is not None else self.title
        self.description = description if description is not None else self.description
        self.tags = tags if tags is not None else self.tags
        self.visibility = visibility if visibility is not None else self.visibility
        if genre is not None:
            self.genre = genre or None

    def delete(self, actor_id: UUID, actor_roles: tuple[str, ...]) -> None:
        self.check_editable_by(actor_id, actor_roles)
        self._deleted()

    class Deleted(Aggregate.Event):
        pass

    @event(Deleted)
    def _deleted(self) -> None:
        self.deleted = True
