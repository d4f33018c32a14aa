"""Resumable uploads: a file sent in pieces, each stored as its own object (S3 cannot append),
then handed to the same upload use case as a multipart POST once the last byte is in."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import anyio
import msgspec
from anyio import to_thread
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from application.accounts import Principal
from application.errors import (
    ChecksumMismatch,
    Conflict,
    DomainError,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UnsupportedChecksum,
)
from application.ports import Clock, IdGenerator, ObjectStorage
from application.uploads import FileChunk, FileEnd, FileStart, FormField, UploadEvent, upload_details
from application.videos import UPLOAD_FIELDS, Videos
from domain.errors import LengthExceeded
from domain.upload_sessions import UploadSession

CHECKSUM_ALGORITHMS = ("sha1", "sha256", "sha512", "md5")
DEFAULT_TTL = timedelta(hours=24)
COMPLETION_SCOPE = "tus-upload"


class UploadStatus(msgspec.Struct):
    id: UUID
    offset: int
    length: int
    expires_at: datetime
    metadata: dict[str, str]
    video_id: UUID | None = None


def _status(session: UploadSession) -> UploadStatus:
    return UploadStatus(
        id=session.id, offset=session.offset, length=session.length, expires_at=session.expires_at,
        metadata=dict(session.metadata), video_id=session.video_id,
    )


def part_prefix(upload_id: UUID) -> str:
    return f"uploads/{upload_id}/"


class ResumableUploads(Application[UUID]):
    name = "uploads"

    def __init__(
        self, *, videos: Videos, storage: ObjectStorage, clock: Clock, ids: IdGenerator,
        ttl: timedelta = DEFAULT_TTL, env: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(env=env)
        self.videos = videos
        self.storage = storage
        self.clock = clock
        self.ids = ids
        self.ttl = ttl
        self._writing: set[UUID] = set()  # uploads a request is appending to, in this process

    @property
    def max_bytes(self) -> int:
        return self.videos.max_upload_bytes

    async def create(self, principal: Principal, length: int, metadata: dict[str, str]) -> UploadStatus:
        """Open an upload of `length` bytes; its details are checked when it completes."""
        self.videos.check_may_upload(principal)
        if length > self.max_bytes:
            raise PayloadTooLarge(f"the upload is over the limit of {self.max_bytes} bytes")
        upload_details(metadata, _filename(metadata))  # refused before any byte is sent; checked again on completion
        session = UploadSession.create(
            self.ids.new_id(), principal.user_id, length, metadata, self.clock.now() + self.ttl
        )
        await to_thread.run_sync(self.save, session)
        return _status(session)

    async def status(self, principal: Principal, upload_id: UUID) -> UploadStatus:
        """Where the caller's upload stands, and its video once complete."""
        session = await self._session(principal, upload_id)
        return _status(session)

    async def append(
        self, principal: Principal, upload_id: UUID, offset: int, chunks: AsyncIterable[bytes],
        checksum: tuple[str, bytes] | None = None,
    ) -> UploadStatus:
        """Store the bytes sent for `offset` as one part; the part is kept only if it arrived
        whole, fits and matches its checksum. The last part completes the upload."""
        if checksum and checksum[0] not in CHECKSUM_ALGORITHMS:
            raise UnsupportedChecksum(f"checksum algorithm {checksum[0]!r} is not one of {CHECKSUM_ALGORITHMS}")
        session = await self._session(principal, upload_id)
        if session.repeats_completion(offset):
            async for chunk in chunks:
                if chunk:
                    raise Conflict("the upload is already complete")
            return _status(session)  # the last PATCH again (its answer was lost): the same video
        session.check_append(principal.user_id, offset, self.clock.now())
        if upload_id in self._writing:
            raise Conflict("another request is writing to this upload")
        self._writing.add(upload_id)
        try:
            if not session.all_received:  # else an earlier completion failed for a backend: retry it
                await self._store_part(session, offset, chunks, checksum)
            if session.all_received:
                session = await self._complete(principal, session)
        finally:
            self._writing.discard(upload_id)
        return _status(session)

    async def terminate(self, principal: Principal, upload_id: UUID) -> None:
        """Drop an unfinished upload and the bytes received so far."""
        session = await self._session(principal, upload_id)
        session.terminate(principal.user_id, self.clock.now())
        await to_thread.run_sync(self.save, session)
        await self.storage.delete_prefix(part_prefix(upload_id))

    # --- steps ------------------------------------------------------------------------

    def _load(self, upload_id: UUID) -> object:
        return self.repository.get(upload_id)

    async def _session(self, principal: Principal, upload_id: UUID) -> UploadSession:
        try:
            session: object = await to_thread.run_sync(self._load, upload_id)
        except AggregateNotFoundError:
            raise NotFound("no such upload") from None
        if not isinstance(session, UploadSession):
            raise NotFound("no such upload")
        if session.is_expired(self.clock.now()) and session.parts:
            await self.storage.delete_prefix(part_prefix(upload_id))  # its bytes are of no use now
        session.check_access(principal.user_id, self.clock.now())
        return session

    async def _store_part(
        self, session: UploadSession, offset: int, chunks: AsyncIterable[bytes], checksum: tuple[str, bytes] | None
    ) -> None:
        # A retried chunk must never overwrite the part another request already recorded.
        key = f"{part_prefix(session.id)}{offset:020d}-{uuid.uuid4().hex}"
        size = await self.storage.put_stream(key, _checked(chunks, session.remaining, checksum))
        if size == 0:
            await self.storage.delete(key)
            return
        try:
            session.receive_chunk(size, key)
            await to_thread.run_sync(self.save, session)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.storage.delete(key)
            raise

    async def _complete(self, principal: Principal, session: UploadSession) -> UploadSession:
        """Hand the bytes to the upload use case. A client that timed out may send the final
        PATCH again, to another replica, while this one still copies: the upload's first
        recorded video answers both (decided in the event store, see domain.completions)."""
        try:
            video = await self.videos.upload(principal, self._upload_events(session), completes=(COMPLETION_SCOPE, session.id))
        except Unavailable:
            raise  # a backend hiccup: the parts stay, and a PATCH at the full offset retries
        except FileNotFoundError:
            # A part vanished while we copied it: another replica completed the upload (and
            # removed its parts) or it was terminated. Its completion, if any, is the answer.
            return await self._completed_elsewhere(session.id)
        except DomainError:
            # Refused for good (not a video, too large, bad details): nothing is kept.
            with anyio.CancelScope(shield=True):
                await self.storage.delete_prefix(part_prefix(session.id))
                session.abandon()
                await to_thread.run_sync(self.save, session)
            raise
        session = await to_thread.run_sync(self._record_completion, session, video.id)
        await self.storage.delete_prefix(part_prefix(session.id))
        return session

    async def _completed_elsewhere(self, upload_id: UUID) -> UploadSession:
        session = await to_thread.run_sync(self._load, upload_id)
        if isinstance(session, UploadSession):
            if session.completed:
                return session
            if session.terminated or session.is_expired(self.clock.now()):
                raise NotFound("no such upload")  # what tus clients start a new upload on
        raise Unavailable("a part of the upload could not be read; send the last PATCH again")

    def _record_completion(self, session: UploadSession, video_id: UUID) -> UploadSession:
        """Point the session at its video; another replica may have done so first."""
        for _ in range(5):
            if session.completed:
                return session
            session.complete(video_id)
            try:
                self.save(session)
                return session
            except IntegrityError:
                session = self.repository.get(session.id)
        raise Unavailable("the upload keeps changing; send the last PATCH again")

    async def _upload_events(self, session: UploadSession) -> AsyncIterator[UploadEvent]:
        """The stored parts as the flat event stream the upload use case reads."""
        for name in UPLOAD_FIELDS:
            if name in session.metadata:
                yield FormField(name=name, value=session.metadata[name])
        yield FileStart(field="file", filename=_filename(session.metadata))
        for key in session.parts:
            async for data in self.storage.stream(key):
                yield FileChunk(data)
        yield FileEnd()


def _filename(metadata: dict[str, str]) -> str:
    """tus clients name the file `filename` (tus-js-client) or `name` (Uppy)."""
    return metadata.get("filename") or metadata.get("name", "")


async def _checked(
    chunks: AsyncIterable[bytes], room: int, checksum: tuple[str, bytes] | None
) -> AsyncIterator[bytes]:
    """Pass the bytes through, raising (so storage keeps nothing) when they overflow the
    upload or, at the end, do not match their checksum."""
    digest = hashlib.new(checksum[0]) if checksum else None
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > room:
            raise LengthExceeded(f"only {room} more bytes fit in the upload")
        if digest:
            digest.update(chunk)
        yield chunk
    if checksum and digest and digest.digest() != checksum[1]:
        raise ChecksumMismatch(f"the chunk does not match its {checksum[0]} checksum; it was discarded")
