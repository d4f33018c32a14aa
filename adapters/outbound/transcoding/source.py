"""Opening a source with PyAV: probing it, and turning its pictures upright.

Errors that come from the bytes (FFmpeg refusing to parse or decode them) become
UnsupportedMedia with a reason a person can read; anything else propagates.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO, overload

import av
import av.error
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.filter import Graph
from av.stream import Disposition
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from adapters.outbound.pyav_media_inspector import demuxer_for
from application.errors import UnsupportedMedia
from application.ports import SourceInfo

# What PyAV raises for bytes it cannot make sense of.
UNREADABLE = (av.error.FFmpegError, EOFError, ValueError, OverflowError)
PACKETS_BEFORE_FIRST_FRAME = 600  # a real video shows a picture long before this
DEFAULT_FRAME_RATE = Fraction(25)
_CONTAINER_OPTIONS = {"probesize": "5000000", "analyzeduration": "5000000"}
# Clockwise degrees -> the filters that turn a frame upright.
UPRIGHT_FILTERS: dict[int, tuple[tuple[str, str], ...]] = {
    90: (("transpose", "clock"),),
    180: (("hflip", ""), ("vflip", "")),
    270: (("transpose", "cclock"),),
}


def open_source(path: Path | BinaryIO, container: str | None = None) -> InputContainer:
    """The demuxer for a source file, forced to the container family its upload's inspection
    recorded so FFmpeg never guesses another; UnsupportedMedia when the bytes do not parse."""
    if isinstance(path, Path) and not path.is_file():
        raise FileNotFoundError(path)  # our fault, not the uploader's: no UnsupportedMedia
    try:
        return av.open(
            str(path) if isinstance(path, Path) else path, mode="r", format=demuxer_for(container),
            container_options=_CONTAINER_OPTIONS, metadata_errors="replace",
        )
    except UNREADABLE as error:
        raise UnsupportedMedia("The file is not a video FFmpeg can read, or it is damaged.") from error


def video_stream(container: InputContainer) -> VideoStream:
    """The first real video stream (cover art and stills do not count)."""
    pictures = Disposition.attached_pic | Disposition.still_image
    for stream in container.streams.video:
        if stream.codec_context is not None and not stream.disposition & pictures:
            return stream
    raise UnsupportedMedia("The file has no video stream that can be decoded.")


def audio_stream(container: InputContainer) -> AudioStream | None:
    """The first audio stream that actually carries samples, if any."""
    for stream in container.streams.audio:
        if stream.codec_context is not None and stream.codec_context.sample_rate > 0:
            return stream
    return None


def probe(path: Path | BinaryIO, container_family: str | None = None) -> SourceInfo:
    """Describe the source from its header and its first decoded frame."""
    with open_source(path, container_family) as container:
        stream = video_stream(container)
        first = _first_frame(container, stream)
        rotation = clockwise_rotation(first)
        width, height = display_size(stream, first, rotation)
        return SourceInfo(
            duration_s=header_duration(container, stream),
            width=width,
            height=height,
            rotation=rotation,
            frame_rate=float(frame_rate(stream)),
            has_audio=audio_stream(container) is not None,
            video_codec=stream.codec_context.codec.canonical_name,
        )


def _first_frame(container: InputContainer, stream: VideoStream) -> VideoFrame:
    try:
        for count, packet in enumerate(container.demux(stream), start=1):
            if count > PACKETS_BEFORE_FIRST_FRAME:
                break
            for frame in decode_tolerantly(packet):
                return frame
    except UNREADABLE as error:
        raise UnsupportedMedia("The video is damaged: its pictures cannot be read.") from error
    raise UnsupportedMedia("The video stream holds no picture that can be decoded.")


@overload
def decode_tolerantly(packet: av.Packet[VideoStream]) -> list[VideoFrame]: ...
@overload
def decode_tolerantly(packet: av.Packet[AudioStream]) -> list[AudioFrame]: ...
@overload
def decode_tolerantly(packet: av.Packet[Any]) -> list[VideoFrame | AudioFrame]: ...
def decode_tolerantly(packet: av.Packet[Any]) -> list[Any]:
    """The packet's frames; one damaged packet costs its frames, not the whole video."""
    try:
        return packet.decode()
    except UNREADABLE:
        return []


def clockwise_rotation(frame: VideoFrame) -> int:
    """The display rotation the source asks for, in clockwise degrees like a `rotate` tag.
    PyAV reports the display matrix counter-clockwise."""
    return (-round(frame.rotation / 90) * 90) % 360


def display_size(stream: VideoStream, frame: VideoFrame, rotation: int) -> tuple[int, int]:
    """Width and height as shown: non-square pixels stretched, then rotated."""
    sample_aspect = stream.codec_context.sample_aspect_ratio or Fraction(1)
    width = max(2, round(frame.width * sample_aspect))
    return (frame.height, width) if rotation in (90, 270) else (width, frame.height)


def frame_rate(stream: VideoStream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate
    return rate if rate and 1 <= rate <= 240 else DEFAULT_FRAME_RATE


def header_duration(container: InputContainer, stream: VideoStream) -> float:
    """What the header claims, which may be wrong: transcoding measures the real one."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    return 0.0


def upright_graph(stream: VideoStream, rotation: int) -> Graph:
    graph = Graph()
    node = graph.add_buffer(template=stream)
    for name, argument in UPRIGHT_FILTERS[rotation]:
        following = graph.add(name, argument)
        node.link_to(following)
        node = following
    node.link_to(graph.add("buffersink"))
    graph.configure()
    return graph


def turn_upright(graph: Graph, frame: VideoFrame) -> VideoFrame:
    """One frame through an upright_graph, which only ever carries pictures."""
    graph.push(frame)
    upright = graph.pull()
    assert isinstance(upright, VideoFrame), "an upright graph's buffersink gives pictures"
    return upright
