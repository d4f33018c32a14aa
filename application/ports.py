"""Ports: what the use cases need from the outside world, named by role."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from uuid import UUID

from domain.ladder import Rung

# --- time and identity -------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""


class IdGenerator(Protocol):
    def new_id(self) -> UUID:
        """A fresh random id."""


# --- accounts ----------------------------------------------------------------


class PasswordHasher(Protocol):
    def hash(self, password: str) -> str:
        """A salted one-way hash of the password."""

    def verify(self, password_hash: str, password: str) -> bool:
        """Whether the password matches the hash."""

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with parameters other than the current ones."""


@dataclass(frozen=True)
class AccessClaims:
    subject: UUID
    username: str
    roles: tuple[str, ...]
    token_id: str  # jti
    session_id: str  # the refresh family the token belongs to
    issued_at: datetime
    expires_at: datetime


class TokenIssuer(Protocol):
    def issue(self, claims: AccessClaims) -> str:
        """A signed access token carrying the claims."""

    def verify(self, token: str) -> AccessClaims:
        """The claims of a valid token; raises InvalidToken otherwise."""

    def public_keys(self) -> dict[str, Any]:
        """The JWK Set of the keys that verify issued tokens."""


@dataclass(frozen=True)
class RefreshGrant:
    user_id: UUID
    family_id: str
    expires_at: datetime
    already_used: bool


class RefreshTokenStore(Protocol):
    def add(self, token_hash: str, user_id: UUID, family_id: str, expires_at: datetime) -> None:
        """Remember an unused refresh token (by its hash) until it expires."""

    def use(self, token_hash: str) -> RefreshGrant | None:
        """Atomically mark the token used; None if unknown or expired."""

    def revoke_family(self, family_id: str, until: datetime) -> None:
        """Refuse every token of the family from now on."""

    def is_family_revoked(self, family_id: str) -> bool:
        """Whether the family was revoked."""


class RevocationList(Protocol):
    def revoke(self, token_id: str, until: datetime) -> None:
        """Refuse access tokens carrying this id (jti, or session) until they would expire anyway."""

    def revoke_issued_before(self, user_id: UUID, cutoff: datetime, until: datetime) -> None:
        """Refuse the user's access tokens issued before cutoff (disabling, a role change),
        remembered until every such token would have expired anyway."""

    def is_revoked(self, *token_ids: str, user_id: UUID | None = None, issued_at: datetime | None = None) -> bool:
        """Whether any of these ids (a jti, a session) was revoked, or the user's tokens issued
        before `issued_at` were; one round trip."""

    def answers_without_io(self) -> bool:
        """Whether is_revoked answers from this process's memory right now (no round trip)."""


class PlaybackTokens(Protocol):
    def issue(self, video_id: UUID, expires_at: datetime) -> str:
        """A URL-safe token that unlocks one video's media until it expires."""

    def verify(self, token: str) -> UUID:
        """The video id the token unlocks; raises InvalidPlaybackToken if forged or expired."""


# --- media -------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str | None
    last_modified: datetime | None


class ObjectStorage(Protocol):
    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], content_type: str | None = None
    ) -> int:
        """Store the chunks under key with bounded memory (multipart when large); returns
        the size. If the iterable raises, nothing is left under key."""

    async def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Store a small object."""

    async def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        """Upload a local file (multipart when large)."""

    async def head(self, key: str) -> ObjectInfo | None:
        """Size, ETag and modification time, or None when there is no such object."""

    async def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object."""

    def stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """The bytes [start, end) of the object as chunks, without reading it all."""

    async def download(self, key: str, path: Path) -> None:
        """Copy the object into a local file, streaming."""

    async def list_keys(self, prefix: str) -> list[str]:
        """Keys under the prefix."""

    async def delete(self, key: str) -> None:
        """Remove one object; no error when it is absent."""

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object under the prefix; returns how many."""

    def open_reader(self, key: str) -> BinaryIO:
        """A synchronous, seekable, read-only file over the object (ranged reads), for
        libraries that want a file object; use it off the event loop."""

    async def ping(self) -> None:
        """Raise if the storage cannot be reached."""


@dataclass(frozen=True)
class MediaInfo:
    container: str  # e.g. "mp4", "matroska", "avi"
    duration_s: float | None
    width: int
    height: int
    video_codec: str
    has_audio: bool


class MediaInspector(Protocol):
    def inspect(self, source: BinaryIO) -> MediaInfo:
        """Probe a seekable file; raise UnsupportedMedia unless it is an accepted video
        container holding at least one real, decodable video stream."""


@dataclass(frozen=True)
class SourceInfo:
    duration_s: float
    width: int  # display width, after rotation
    height: int  # display height, after rotation
    rotation: int  # degrees, as tagged by the source
    frame_rate: float
    has_audio: bool
    video_codec: str


@dataclass(frozen=True)
class SourceIndex:
    """A demux-only look at the source: when each picture is shown, and which are keyframes."""

    info: SourceInfo
    time_base: Fraction  # of the pts below
    frame_pts: list[int]  # in decode order
    keyframe_pts: list[int]
    end_pts: int  # when the last picture ends
    # The container has no presentation times (AVI): FFmpeg guesses them in decode order, so
    # pictures decoded out of order carry each other's; the tasks restamp them (tasks.py).
    times_in_decode_order: bool = False


@dataclass(frozen=True)
class TaskOutput:
    files: tuple[str, ...]  # relative to the task's output directory
    result: dict[str, Any]  # what the job records: {"tracks": {rung: {config, codecs, timescale, segments, …}}}


@dataclass(frozen=True)
class AssemblyOutput:
    files: tuple[str, ...]
    progressive: str  # "mp4/720p.mp4"
    sprite: str
    storyboard: str


class Transcoder(Protocol):
    def index(self, source: Path, container: str | None = None) -> SourceIndex:
        """Probe the source and index its pictures without decoding, opened as the container
        family the upload's inspection recorded (MediaInfo.container); raises UnsupportedMedia."""

    def rung_sizes(self, width: int, height: int, rungs: Sequence[Rung]) -> list[dict[str, Any]]:
        """[{name, width, height, bitrate}] of the rungs for a source shown at width x height."""

    def encode(self, source: Path, plan: dict[str, Any], pass_name: str, chunk: int, output_dir: Path) -> TaskOutput:
        """Run one task of the plan: its CMAF segments (and init segments, the poster) into
        output_dir; raises UnsupportedMedia for a corrupt stretch of source."""

    def assemble(
        self, cmaf_dir: Path, plan: dict[str, Any], tracks: dict[str, dict[str, Any]], output_dir: Path
    ) -> AssemblyOutput:
        """The progressive MP4 (a remux of a rung's segments) and the sprite and storyboard."""


# --- observability -----------------------------------------------------------


class PipelineMetrics(Protocol):
    def transcode_finished(self, rung: str, seconds: float) -> None:
        """One rung of a video's ladder took `seconds` to encode."""

    def processing_outcome(self, outcome: str) -> None:
        """A processing attempt ended: ready, failed, skipped or retried."""

    def relay_position(self, published: int, latest: int, log: str = "videos") -> None:
        """Where the relay is in a notification log, and where the log ends."""

    def video_reached(self, milestone: str, seconds: float) -> None:
        """A video became `playable` or `ready` this many seconds after its upload was accepted."""


# --- caching -----------------------------------------------------------------


class Cache(Protocol):
    def get(self, key: str) -> bytes | None:
        """The cached value, or None when absent or expired."""

    def set(self, key: str, value: bytes, ttl_s: int) -> None:
        """Cache a value for ttl_s seconds."""

    def delete(self, *keys: str) -> None:
        """Forget the keys."""

    def peek(self, key: str) -> bytes | None:
        """The value if this process holds it, without any I/O; None otherwise (then ask get)."""


# --- messaging ---------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMessage:
    topic: str
    key: bytes
    value: bytes
    # None: the partition follows the key. A number: messages with consecutive numbers go to
    # consecutive partitions, which a round-robin group hands to different members, so the
    # tasks of one video spread evenly over the workers instead of where their keys hash.
    spread: int | None = None
    trace_context: str | None = None  # W3C traceparent of what the message announces (a Kafka header)


class EventPublisher(Protocol):
    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        """Publish in order and return only once the broker acknowledged every one."""

    async def ping(self) -> None:
        """Raise if the broker cannot be reached."""
