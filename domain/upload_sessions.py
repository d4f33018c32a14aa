"""Resumable upload sessions: bytes arrive in order, from their owner, until the announced length."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.errors import Conflict, LengthExceeded, NotFound, OffsetMismatch, UploadExpired, ValidationError


class UploadSession(Aggregate):
    @event("Created")
    def __init__(
        self, id: UUID, owner_id: UUID, length: int, metadata: dict[str, str], expires_at: datetime
    ) -> None:
        self.owner_id = owner_id
        self.length = length
        self.metadata = metadata
        self.expires_at = expires_at
        self.offset = 0
        self.parts: list[str] = []
        self.video_id: UUID | None = None
        self.terminated = False

    @classmethod
    def create(
        cls, session_id: UUID, owner_id: UUID, length: int, metadata: dict[str, str], expires_at: datetime
    ) -> UploadSession:
        if length < 1:
            raise ValidationError("Upload-Length", "an upload holds at least one byte")
        return cls(id=session_id, owner_id=owner_id, length=length, metadata=metadata, expires_at=expires_at)

    # --- where it stands ------------------------------------------------------------

    @property
    def completed(self) -> bool:
        return self.video_id is not None

    @property
    def remaining(self) -> int:
        return self.length - self.offset

    @property
    def all_received(self) -> bool:
        return self.offset == self.length

    def is_expired(self, now: datetime) -> bool:
        """Only unfinished uploads expire; a completed one keeps pointing at its video."""
        return not self.completed and now >= self.expires_at

    def check_access(self, actor_id: UUID, now: datetime) -> None:
        """Others' and terminated sessions do not exist for the caller."""
        if actor_id != self.owner_id or self.terminated:
            raise NotFound("no such upload")
        if self.is_expired(now):
            raise UploadExpired("the upload expired before it was complete")

    def check_append(self, actor_id: UUID, offset: int, now: datetime) -> None:
        """Bytes are taken only at the current offset of an unfinished upload."""
        self.check_access(actor_id, now)
        if self.completed:
            raise Conflict("the upload is already complete")
        if offset != self.offset:
            raise OffsetMismatch(f"the upload is at offset {self.offset}, not {offset}")

    def repeats_completion(self, offset: int) -> bool:
        """An empty PATCH at the end of a completed upload asks for its completion again:
        the answer is the same video, never another."""
        return self.completed and offset == self.length

    # --- commands -------------------------------------------------------------------

    def receive_chunk(self, size: int, part_key: str) -> None:
        if size < 1:
            raise ValidationError("body", "a chunk holds at least one byte")
        if size > self.remaining:
            raise LengthExceeded(f"only {self.remaining} more bytes fit in the upload")
        if self.completed or self.terminated:
            raise Conflict("the upload takes no more bytes")
        self._chunk_received(offset_after=self.offset + size, part_key=part_key)

    @event("ChunkReceived")
    def _chunk_received(self, offset_after: int, part_key: str) -> None:
        self.offset = offset_after
        self.parts.append(part_key)

    def complete(self, video_id: UUID) -> None:
        if not self.all_received:
            raise Conflict(f"{self.remaining} bytes are still missing")
        if self.completed or self.terminated:
            raise Conflict("the upload is already finished")
        self._completed(video_id=video_id)

    @event("Completed")
    def _completed(self, video_id: UUID) -> None:
        self.video_id = video_id

    def terminate(self, actor_id: UUID, now: datetime) -> None:
        """The owner may drop an unfinished upload; a completed one is the video's now."""
        self.check_access(actor_id, now)
        if self.completed:
            raise Conflict("the upload is complete; delete the video instead")
        self._terminated()

    def abandon(self) -> None:
        """Given up by the server: the complete bytes were refused as a video."""
        if self.completed or self.terminated:
            raise Conflict("the upload is already finished")
        self._terminated()

    @event("Terminated")
    def _terminated(self) -> None:
        self.terminated = True
