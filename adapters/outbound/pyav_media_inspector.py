"""Decides from the bytes whether an upload is an accepted video, using PyAV.

FFmpeg will "open" almost anything (a PNG, a text file, an MP3 with cover art), so
probing alone proves nothing. The inspector therefore:
1. sniffs the magic number itself and refuses anything outside the container allowlist;
2. opens the file with that container's demuxer forced, so FFmpeg never guesses a
   different format, and with bounded probing;
3. requires a real video stream (no cover art, no still image) that decodes to at
   least two frames within a bounded number of packets.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import BinaryIO

import av
import av.error
from av.container import InputContainer
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from adapters.outbound.media_sandbox import SandboxLimits, run_sandboxed
from application.errors import UnsupportedMedia
from application.ports import MediaInfo

HEAD_BYTES = 4096  # enough for every magic number, and eight 192-byte transport packets
FRAMES_THAT_MAKE_A_VIDEO = 2  # one decoded frame is a picture, not a video
MAX_PIXELS = 8192 * 8192  # decoders refuse larger pictures instead of allocating them

# Exceptions PyAV raises for bad input. Anything else (notably OSError from a storage
# reader) is not the uploader's fault and propagates.
_UNREADABLE = (av.error.FFmpegError, EOFError, ValueError, OverflowError)

_QUICKTIME_LEADING_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"}
# ISO-BMFF brands of still images and image sequences (HEIF, AVIF): an ftyp box, but no video.
_IMAGE_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"mif1", b"msf1", b"avif", b"avis"}
# (offset of the first sync byte, stride): plain TS, then M2TS with its 4-byte timestamp prefix
_TRANSPORT_PACKET_LAYOUTS = ((0, 188), (4, 192))
_TRANSPORT_PACKETS_TO_CHECK = 8
_TRANSPORT_PACKETS_REQUIRED = 3
_TRANSPORT_SYNC = 0x47


@dataclass(frozen=True)
class ContainerFamily:
    name: str  # what MediaInfo.container reports
    demuxer: str  # the FFmpeg input format forced when opening
    label: str  # how a person would call it


MP4 = ContainerFamily("mp4", "mov", "MP4/QuickTime")
MATROSKA = ContainerFamily("matroska", "matroska", "Matroska/WebM")
AVI = ContainerFamily("avi", "avi", "AVI")
MPEG_TS = ContainerFamily("mpegts", "mpegts", "MPEG transport stream")
MPEG_PS = ContainerFamily("mpegps", "mpeg", "MPEG program stream")
FLV = ContainerFamily("flv", "flv", "FLV")
OGG = ContainerFamily("ogg", "ogg", "Ogg")
FAMILIES = {family.name: family for family in (MP4, MATROSKA, AVI, MPEG_TS, MPEG_PS, FLV, OGG)}


def demuxer_for(container: str | None) -> str | None:
    """The FFmpeg demuxer of a recorded container family (None: unknown, let FFmpeg guess)."""
    if container is None:
        return None
    family = FAMILIES.get(container)
    if family is None:
        raise UnsupportedMedia(f"The recorded container {container!r} is not an accepted one.")
    return family.demuxer


def sniff_container(head: bytes) -> ContainerFamily | None:
    """The accepted container family the first bytes announce, or None."""
    if head[4:8] in _QUICKTIME_LEADING_BOXES:
        return None if head[4:8] == b"ftyp" and head[8:12] in _IMAGE_BRANDS else MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return MATROSKA
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return AVI
    if head.startswith(b"\x00\x00\x01\xba"):
        return MPEG_PS
    if head.startswith(b"FLV\x01"):
        return FLV
    if head.startswith(b"OggS"):
        return OGG
    if any(_has_transport_sync(head, first, stride) for first, stride in _TRANSPORT_PACKET_LAYOUTS):
        return MPEG_TS
    return None


def _has_transport_sync(head: bytes, first: int, stride: int) -> bool:
    """Whether the sync byte recurs at each packet boundary in the head (a lone 'G' is text)."""
    offsets = range(first, len(head), stride)[:_TRANSPORT_PACKETS_TO_CHECK]
    if len(offsets) < _TRANSPORT_PACKETS_REQUIRED:
        return False
    return all(head[offset] == _TRANSPORT_SYNC for offset in offsets)


class PyAVMediaInspector:
    """MediaInspector over PyAV; reads the head, the index and the first packets only."""

    def __init__(
        self,
        *,
        max_packets: int = 600,
        probe_bytes: int = 5_000_000,
        analyze_microseconds: int = 5_000_000,
        buffer_size: int = 64 * 1024,
        sandbox: SandboxLimits | None = SandboxLimits(),
    ) -> None:
        self._sandbox = sandbox  # None parses in this process: only for measuring the sandbox's cost
        self._max_packets = max_packets
        self._buffer_size = buffer_size
        self._container_options = {
            "probesize": str(probe_bytes),
            "analyzeduration": str(analyze_microseconds),
        }

    def inspect(self, source: BinaryIO) -> MediaInfo:
        """Describe the video in source; raise UnsupportedMedia unless it is an accepted one."""
        family = sniff_container(_read_head(source))
        if family is None:
            raise UnsupportedMedia(
                "The file is not in a supported video container "
                "(MP4, MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV or Ogg)."
            )
        source.seek(0)
        if self._sandbox is None:
            return self.parse(source, family)
        return run_sandboxed(_parse_in_child, source, self._sandbox, self, family, returns=MediaInfo)

    def parse(self, source: BinaryIO, family: ContainerFamily) -> MediaInfo:
        """FFmpeg's part of the inspection: run in the sandbox's child."""
        try:
            with self._open(source, family) as container:
                return self._describe(container, family)
        except _UNREADABLE as error:
            reason = f"The file looks like {family.label} but is damaged or incomplete."
            raise UnsupportedMedia(reason) from error

    def _open(self, source: BinaryIO, family: ContainerFamily) -> InputContainer:
        """Open with the sniffed demuxer forced and probing bounded."""
        return av.open(
            source,
            mode="r",
            format=family.demuxer,
            container_options=self._container_options,
            metadata_errors="replace",  # hostile tags must not fail the upload as a decode error
            buffer_size=self._buffer_size,
        )

    def _describe(self, container: InputContainer, family: ContainerFamily) -> MediaInfo:
        """MediaInfo for the first video stream that decodes to moving pictures."""
        candidates = _moving_picture_candidates(container)
        decoded = self._first_moving_stream(container, candidates)
        if decoded is None:
            raise UnsupportedMedia(
                "The video stream could not be decoded, or it holds a single picture."
            )
        stream, frame = decoded
        return MediaInfo(
            container=family.name,
            duration_s=_duration_seconds(container, stream),
            width=frame.width,
            height=frame.height,
            video_codec=stream.codec_context.codec.canonical_name,
            has_audio=_has_audio(container),
        )

    def _first_moving_stream(
        self, container: InputContainer, candidates: list[VideoStream]
    ) -> tuple[VideoStream, VideoFrame] | None:
        """The first candidate to yield enough frames, with its first frame; None past the budget."""
        for stream in candidates:
            # Frame threading would hold frames back until the whole thread pool is fed.
            stream.codec_context.thread_count = 1
            # Declared sizes were checked; this also stops a size that changes mid-stream.
            stream.codec_context.options = {"max_pixels": str(MAX_PIXELS)}
        by_index = {stream.index: stream for stream in candidates}
        first_frames: dict[int, list[VideoFrame]] = {index: [] for index in by_index}
        # Every stream is demuxed so the bound counts all packets read, not just video ones.
        for packets_read, packet in enumerate(container.demux(), start=1):
            if packets_read > self._max_packets:
                return None
            candidate = by_index.get(packet.stream.index)
            if candidate is None:
                continue
            frames = first_frames[candidate.index]
            frames.extend(_decode_tolerantly(candidate, packet))
            if len(frames) >= FRAMES_THAT_MAKE_A_VIDEO:
                return candidate, frames[0]
        return None


def _read_head(source: BinaryIO) -> bytes:
    """Up to HEAD_BYTES from the start, tolerating readers that return short reads."""
    source.seek(0)
    head = b""
    while len(head) < HEAD_BYTES:
        chunk = source.read(HEAD_BYTES - len(head))
        if not chunk:
            break
        head += chunk
    return head


def _moving_picture_candidates(container: InputContainer) -> list[VideoStream]:
    """Video streams that may hold moving pictures; raises with the reason when there are none."""
    videos = list(container.streams.video)
    if not videos:
        if container.streams.audio:
            raise UnsupportedMedia("The file contains only audio, no video.")
        raise UnsupportedMedia("The file contains no video stream.")
    pictures = Disposition.attached_pic | Disposition.still_image
    candidates = [
        stream
        for stream in videos
        if not stream.disposition & pictures and stream.codec_context is not None
    ]
    if not candidates:
        raise UnsupportedMedia(
            "The file's only pictures are cover art or stills, or their codec is unknown."
        )
    if all(_pixels(stream) > MAX_PIXELS for stream in candidates):
        raise UnsupportedMedia("The video's pictures are too large.")
    return candidates


def _pixels(stream: VideoStream) -> int:
    """The declared picture size of the stream, in pixels."""
    return stream.codec_context.width * stream.codec_context.height


def _decode_tolerantly(stream: VideoStream, packet: av.Packet) -> Iterable[VideoFrame]:
    """The packet's frames; a damaged packet yields none instead of failing the upload."""
    try:
        return stream.decode(packet)
    except _UNREADABLE:
        return []


def _has_audio(container: InputContainer) -> bool:
    """Whether an audio stream of a known codec has samples (a declared, empty TS PID has not)."""
    return any(
        stream.codec_context is not None and stream.codec_context.sample_rate > 0
        for stream in container.streams.audio
    )


def _duration_seconds(container: InputContainer, stream: VideoStream) -> float | None:
    """The container's duration, else the stream's, else None when neither is known."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration is not None and stream.duration > 0 and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    return None


def _parse_in_child(source: BinaryIO, inspector: PyAVMediaInspector, family: ContainerFamily) -> MediaInfo:
    return inspector.parse(source, family)
