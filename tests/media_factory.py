"""Tiny real media files written with PyAV, for tests that need bytes FFmpeg will parse.

Everything is generated (no fixtures on disk) and kept small: a 160x90, 1 s clip is a
few kilobytes and takes a few tens of milliseconds to encode. Frames carry a moving
diagonal gradient rather than a flat colour, so encoders produce real motion.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from pathlib import Path

import av
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.stream import Disposition

AUDIO_RATE = 48_000  # Opus only takes 48 kHz, and every other encoder accepts it too
AUDIO_FRAME_SAMPLES = 1024

# The audio encoder each muxer takes without complaint.
_AUDIO_CODEC_FOR_CONTAINER = {
    "webm": "libopus",
    "ogg": "libopus",
    "mpeg": "mp2",
    "avi": "mp3",
}

_AUDIO_ONLY_FORMATS = {  # kind -> (muxer, encoder)
    "m4a": ("ipod", "aac"),
    "mp4": ("mp4", "aac"),
    "mp3": ("mp3", "mp3"),
    "wav": ("wav", "pcm_s16le"),
    "flac": ("flac", "flac"),
    "ogg": ("ogg", "libopus"),
}


def write_clip(
    path: Path,
    *,
    container: str = "mp4",
    codec: str = "libx264",
    width: int = 160,
    height: int = 90,
    seconds: float = 1.0,
    fps: int = 24,
    audio: bool = True,
    pix_fmt: str = "yuv420p",
    rotation: int | None = None,
    audio_codec: str | None = None,
    muxer_options: dict[str, str] | None = None,
) -> Path:
    """Write a clip of moving video (plus a tone when audio) with the FFmpeg muxer `container`."""
    frame_count = max(1, round(seconds * fps))
    with av.open(str(path), mode="w", format=container, options=muxer_options or {}) as output:
        video = output.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if rotation is not None:
            video.set_display_rotation(rotation)
        tone = None
        if audio:
            tone = _add_tone_stream(output, audio_codec or _audio_codec_for(container))
        for index in range(frame_count):
            frame = moving_frame(width, height, index)
            frame.pts, frame.time_base = index, Fraction(1, fps)
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if tone is not None:
            _write_tone(output, tone, seconds)
    return path


def write_audio_only(path: Path, container: str = "m4a", *, seconds: float = 1.0) -> Path:
    """Write a tone with no video: container is one of m4a, mp4, mp3, wav, flac, ogg."""
    muxer, encoder = _AUDIO_ONLY_FORMATS[container]
    with av.open(str(path), mode="w", format=muxer) as output:
        _write_tone(output, _add_tone_stream(output, encoder), seconds)
    return path


def write_audio_with_cover(path: Path, container: str = "mp4", *, seconds: float = 1.0) -> Path:
    """Write audio whose only picture is embedded cover art (an attached_pic stream): mp4 or mp3."""
    muxer, encoder = _AUDIO_ONLY_FORMATS[container]
    with av.open(str(path), mode="w", format=muxer) as output:
        tone = _add_tone_stream(output, encoder)
        cover = output.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 64, 48, "yuvj420p"
        cover.disposition = Disposition.attached_pic
        for packet in cover.encode(moving_frame(64, 48, 0)):
            output.mux(packet)
        _write_tone(output, tone, seconds)
    return path


def write_png(path: Path, width: int = 64, height: int = 48) -> Path:
    """Write a single PNG image."""
    return _write_still(path, "png", "rgb24", width, height)


def write_jpeg(path: Path, width: int = 64, height: int = 48) -> Path:
    """Write a single JPEG image."""
    return _write_still(path, "mjpeg", "yuvj420p", width, height)


def write_animated_gif(path: Path, width: int = 64, height: int = 48, frames: int = 6) -> Path:
    """Write an animated GIF (an image format, even though it moves)."""
    with av.open(str(path), mode="w", format="gif") as output:
        stream = output.add_stream("gif", rate=10)
        stream.width, stream.height, stream.pix_fmt = width, height, "rgb8"
        for index in range(frames):
            output.mux(stream.encode(moving_frame(width, height, index)))
        output.mux(stream.encode(None))
    return path


def write_truncated_copy(source: Path, target: Path, keep_fraction: float = 0.5) -> Path:
    """Copy the first keep_fraction of source's bytes into target."""
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep_fraction)])
    return target


def moving_frame(width: int, height: int, index: int) -> av.VideoFrame:
    """An RGBA frame whose diagonal gradient has shifted by `index` steps."""
    stride = 4 * width
    line = _gradient_line(width + height + 8 * (index + 1))
    shift = 4 * 8 * index  # the pattern slides 8 pixels per frame
    rows = (line[shift + 4 * y : shift + 4 * y + stride] for y in range(height))
    # from_bytes only takes RGBA; encoders convert to their own pixel format.
    return av.VideoFrame.from_bytes(b"".join(rows), width, height, format="rgba")


def _gradient_line(pixels: int) -> bytes:
    """Opaque RGBA pixels whose channels ramp at different speeds, so neighbours differ."""
    return bytes(
        channel
        for k in range(pixels)
        for channel in ((k * 5) & 255, (k * 3) & 255, (k * 7) & 255, 255)
    )


def _write_still(path: Path, codec: str, pix_fmt: str, width: int, height: int) -> Path:
    """Encode one frame with an image codec and write the bare packet bytes."""
    encoder = av.CodecContext.create(codec, "w")
    encoder.width, encoder.height, encoder.pix_fmt = width, height, pix_fmt
    encoder.time_base = Fraction(1, 25)
    packets = encoder.encode(moving_frame(width, height, 0)) + encoder.encode(None)
    path.write_bytes(b"".join(bytes(packet) for packet in packets))
    return path


def _audio_codec_for(container: str) -> str:
    """The audio encoder that muxer accepts (AAC unless it is known not to)."""
    return _AUDIO_CODEC_FOR_CONTAINER.get(container, "aac")


def _add_tone_stream(output: OutputContainer, codec: str) -> AudioStream:
    """A mono audio stream at AUDIO_RATE."""
    return output.add_stream(codec, rate=AUDIO_RATE, layout="mono")


def _write_tone(output: OutputContainer, stream: AudioStream, seconds: float) -> None:
    """Encode `seconds` of a 440 Hz tone into the stream and flush it."""
    samples_per_frame = stream.codec_context.frame_size or AUDIO_FRAME_SAMPLES
    total = int(seconds * AUDIO_RATE)
    for start in range(0, total, samples_per_frame):
        output.mux(stream.encode(_tone_frame(start, samples_per_frame)))
    output.mux(stream.encode(None))


def _tone_frame(first_sample: int, samples: int) -> av.AudioFrame:
    """`samples` of a quiet 440 Hz sine starting at sample `first_sample`, as signed 16-bit mono."""
    angular_step = 2 * math.pi * 440 / AUDIO_RATE
    values = (int(8000 * math.sin(angular_step * (first_sample + n))) for n in range(samples))
    frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
    frame.planes[0].update(struct.pack(f"<{samples}h", *values))
    frame.sample_rate = AUDIO_RATE
    frame.pts, frame.time_base = first_sample, Fraction(1, AUDIO_RATE)
    return frame
