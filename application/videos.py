"""Videos: upload (streamed to object storage, checked from the bytes), read, edit, delete."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import anyio
import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Transcoding

from application.accounts import Principal
from application.bulkheads import Bulkheads
from application.errors import NotFound, PayloadTooLarge, PermissionDenied, UnsupportedMedia, ValidationError
from application.following import SignalledLog
from application.media_links import MediaLinks
from application.ports import Clock, IdGenerator, MediaInfo, MediaInspector, ObjectStorage
from application.uploads import (
    CONTENT_TYPES,
    FileChunk,
    FileEnd,
    FileStart,
    FormField,
    UploadEvent,
    safe_extension,
    upload_details,
)
from application.video_views import FiguresSource, VideoFigures, VideoView, video_view
from domain.completions import Completion, completion_id
from domain.media import Manifests, Rendition, Thumbnails
from domain.transcode_jobs import TranscodeJob, job_id
from domain.videos import PROCESSING, READY, Video, may_upload

UPLOAD_FIELDS = ("title", "description", "tags", "visibility", "genre")


def _view(video: Video, links: MediaLinks | None = None, progress: float | None = None,
          figures: VideoFigures = VideoFigures()) -> VideoView:
    """The aggregate as the api shows it: a video's own page answers from it (read-your-writes)."""
    return video_view(
        video, links, created_at=video.created_on, updated_at=video.modified_on,
        progress=progress if progress is not None else (1.0 if video.status == READY else 0.0), figures=figures,
    )


class _StructAsObject(Transcoding):
    """A media Struct in a stored event: its fields as a JSON object."""

    def __init__(self, struct_type: type[msgspec.Struct], name: str) -> None:
        self.type, self.name = struct_type, name

    def encode(self, obj: msgspec.Struct) -> dict[str, Any]:
        fields: dict[str, Any] = msgspec.to_builtins(obj)
        return fields

    def decode(self, data: dict[str, Any]) -> msgspec.Struct:
        return msgspec.convert(data, self.type)


def register_media_transcodings(transcoder: JSONTranscoder) -> None:
    """Every application that reads the videos' events (the log followers too) needs these."""
    for struct_type, name in ((Rendition, "rendition"), (Manifests, "manifests"), (Thumbnails, "thumbnails")):
        transcoder.register(_StructAsObject(struct_type, name))


class HistoryEntry(msgspec.Struct):
    type: str
    version: int
    timestamp: datetime
    payload: dict[str, Any]


# Bookkeeping every event carries, and what an audit reader has no use for.
_HIDDEN_EVENT_FIELDS = {"originator_id", "originator_version", "timestamp", "originator_topic"}


def _history_entry(event: Any) -> HistoryEntry:
    payload = {
        name: str(value) if isinstance(value, UUID) else value
        for name, value in vars(event).items() if name not in _HIDDEN_EVENT_FIELDS
    }
    return HistoryEntry(
        type=type(event).__name__, version=event.originator_version, timestamp=event.timestamp, payload=payload,
    )


class _AnsweredEarlier(Exception):
    def __init__(self, video: Video) -> None:
        self.video = video


class _ReceivedFile(msgspec.Struct):
    key: str
    filename: str
    size: int
    sha256: str


class Videos(SignalledLog):
    name = "videos"
    # A long video's job gathers hundreds of TaskDone events, read on every status poll.
    snapshotting_intervals = {TranscodeJob: 20}

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_media_transcodings(transcoder)

    def __init__(
        self, *, storage: ObjectStorage, inspector: MediaInspector, clock: Clock, ids: IdGenerator,
        max_upload_bytes: int, links: MediaLinks | None = None, env: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(env=env)
        self.storage = storage
        self.inspector = inspector
        self.clock = clock
        self.ids = ids
        self.max_upload_bytes = max_upload_bytes
        self.links = links
        self.on_change: list[Callable[[UUID], None]] = []  # told after an edit or deletion is saved
        self.figures: FiguresSource | None = None  # views, likes, comments; none: all zero
        self.bulkheads = Bulkheads()  # the composition root hands in the process's own

    # --- upload ------------------------------------------------------------------------

    def check_may_upload(self, principal: Principal) -> None:
        """Refuse before a byte is read when the caller may not upload."""
        if not may_upload(principal.roles):
            raise PermissionDenied("your account may not upload videos")

    async def upload(
        self, principal: Principal, events: AsyncIterator[UploadEvent], completes: tuple[str, UUID] | None = None,
    ) -> VideoView:
        """Stream the one file into raw/{id}/original, check it is a video from its bytes and
        record Uploaded. Any failure, including the client going away, leaves nothing behind.
        completes: (scope, key) of a request that may be sent again (a tus upload's completion):
        its first completion's video is the answer to every other, on any replica."""
        self.check_may_upload(principal)
        if completes is not None and (earlier := await self.bulkheads.event_store.run(self._completed, *completes)):
            return _view(earlier)
        video_id = self.ids.new_id()
        written: list[str] = []
        try:
            fields, received = await self._receive(video_id, events, written)
            details = upload_details(fields, received.filename)
            if received.size == 0:
                raise UnsupportedMedia("the file is empty")
            media = await self.bulkheads.inspection.run(self._inspect, received.key)
            video = Video.upload(
                video_id, principal.user_id, principal.roles, **details, source_key=received.key,
                source_size=received.size, source_content_type=CONTENT_TYPES.get(media.container, "video/mp4"),
                source_sha256=received.sha256, source_container=media.container,
            )
            recorded = await self.bulkheads.event_store.run(self._save_upload, video, completes)
            if recorded.id != video.id:
                raise _AnsweredEarlier(recorded)
        except _AnsweredEarlier as answered:  # our copy is of no use: only the first is kept
            with anyio.CancelScope(shield=True):
                for key in written:
                    await self.storage.delete(key)
            return _view(answered.video)
        except BaseException:
            with anyio.CancelScope(shield=True):
                for key in written:
                    await self.storage.delete(key)
            raise
        return _view(video)

    def _save_upload(self, video: Video, completes: tuple[str, UUID] | None) -> Video:
        """Record the video, or return the one an earlier completion of the same request
        recorded: the completion's id conflicts, whichever replica saved it first."""
        if completes is None:
            self.save(video)
            return video
        try:
            self.save(video, Completion.record(*completes, result_id=video.id))
            return video
        except IntegrityError:
            earlier = self._completed(*completes)
            if earlier is None:
                raise
            return earlier

    def _completed(self, scope: str, key: UUID) -> Video | None:
        try:
            completion: Completion = self.repository.get(completion_id(scope, key))
        except AggregateNotFoundError:
            return None
        return self.repository.get(completion.result_id)

    async def _receive(
        self, video_id: UUID, events: AsyncIterator[UploadEvent], written: list[str]
    ) -> tuple[dict[str, str], _ReceivedFile]:
        fields: dict[str, str] = {}
        received: _ReceivedFile | None = None
        async for item in events:
            if isinstance(item, FormField):
                if item.name in UPLOAD_FIELDS:
                    if item.name in fields:
                        raise ValidationError(item.name, "given more than once")
                    fields[item.name] = item.value
            elif isinstance(item, FileStart):
                if item.field != "file":
                    raise ValidationError(item.field, "unexpected file field; send the video as `file`")
                if received is not None:
                    raise ValidationError("file", "send exactly one file")
                key = f"raw/{video_id}/original{safe_extension(item.filename)}"
                written.append(key)
                received = await self._store_file(key, item.filename, events)
        if received is None:
            raise ValidationError("file", "a video file is required")
        return fields, received

    async def _store_file(self, key: str, filename: str, events: AsyncIterator[UploadEvent]) -> _ReceivedFile:
        digest = hashlib.sha256()
        size = 0

        async def file_bytes() -> AsyncIterator[bytes]:
            nonlocal size
            async for item in events:
                if isinstance(item, FileEnd):
                    return
                assert isinstance(item, FileChunk)
                size += len(item.data)
                if size > self.max_upload_bytes:
                    raise PayloadTooLarge(f"the upload is over the limit of {self.max_upload_bytes} bytes")
                digest.update(item.data)
                yield item.data

        await self.storage.put_stream(key, file_bytes())
        return _ReceivedFile(key=key, filename=filename, size=size, sha256=digest.hexdigest())

    def _inspect(self, key: str) -> MediaInfo:
        with self.storage.open_reader(key) as reader:
            return self.inspector.inspect(reader)

    # --- reading -----------------------------------------------------------------------

    def get_video(self, principal: Principal, video_id: UUID) -> VideoView:
        """A video the caller may see; others' private ones and deleted ones are not found."""
        video = self.get_aggregate(video_id)
        video.check_visible_to(principal.user_id, principal.roles)
        return self._shown(video, principal)

    def progress(self, video: Video) -> float:
        """Share of the processing work done: the current plan's job knows."""
        if video.status == READY:
            return 1.0
        if video.status != PROCESSING or video.plan_id is None:
            return 0.0
        try:
            return self.repository.get(job_id(video.id, video.plan_id)).progress
        except AggregateNotFoundError:  # recorded with the plan, so only a hand-made state lacks it
            return 0.0

    def progress_of(self, video_id: UUID) -> float:
        """progress() by id; 0.0 for a video that is gone."""
        try:
            return self.progress(self.get_aggregate(video_id))
        except NotFound:
            return 0.0

    def processing_state(self, principal: Principal, video_id: UUID) -> tuple[str, float, list[Rendition]]:
        """(status, progress, streamable renditions) of a video the caller may see."""
        video = self.get_aggregate(video_id)
        video.check_visible_to(principal.user_id, principal.roles)
        return video.status, self.progress(video), list(video.renditions)

    def edit_details(
        self, principal: Principal, video_id: UUID, *, title: str | None = None,
        description: str | None = None, tags: list[str] | None = None, visibility: str | None = None,
        genre: str | None = None, cleared: tuple[str, ...] = (),
    ) -> VideoView:
        """Change title, description, tags, genre or visibility (a JSON merge patch: fields in
        `cleared` were null); owner, moderators and admins."""
        video = self.get_aggregate(video_id)
        video.edit_details(
            principal.user_id, principal.roles, title=title, description=description, tags=tags,
            visibility=visibility, genre=genre, cleared=cleared,
        )
        self.save(video)
        self._notify_change(video.id)
        return self._shown(video, principal)

    def _shown(self, video: Video, principal: Principal) -> VideoView:
        figures = VideoFigures() if self.figures is None else self.figures.figures(video.id, principal.user_id)
        return _view(video, self.links, self.progress(video), figures)

    def retry(self, principal: Principal, video_id: UUID) -> VideoView:
        """Re-drive a failed video's processing; the relay hands it to the workers again."""
        video = self.get_aggregate(video_id)
        video.retry(principal.user_id, principal.roles)
        self.save(video)
        self._notify_change(video.id)
        return _view(video, self.links)

    def delete_video(self, principal: Principal, video_id: UUID) -> None:
        """Gone for readers at once; its objects are removed by the janitor following the log."""
        video = self.get_aggregate(video_id)
        video.delete(principal.user_id, principal.roles)
        self.save(video)
        self._notify_change(video.id)

    def _notify_change(self, video_id: UUID) -> None:
        for notify in self.on_change:
            notify(video_id)

    def history(self, principal: Principal, video_id: UUID) -> list[HistoryEntry]:
        """The video's domain events, oldest first; owner, moderators and admins."""
        video = self.get_aggregate(video_id)
        if not video.may_edit(principal.user_id, principal.roles):
            video.check_visible_to(principal.user_id, principal.roles)
            raise PermissionDenied("only the owner, a moderator or an admin may read the history")
        return [_history_entry(event) for event in self.events.get(video_id)]

    def status(self, principal: Principal, video_id: UUID) -> str:
        """The current status of a video the caller may see."""
        video = self.get_aggregate(video_id)
        video.check_visible_to(principal.user_id, principal.roles)
        return video.status

    def get_aggregate(self, video_id: UUID) -> Video:
        """The video aggregate, deleted ones included; NotFound for anything else."""
        try:
            video: object = self.repository.get(video_id)
        except AggregateNotFoundError:
            raise NotFound("no such video") from None
        if not isinstance(video, Video):
            raise NotFound("no such video")
        return video
