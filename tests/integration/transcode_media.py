"""Source media for the transcoder tests, generated in-process with PyAV.

FFmpeg's testsrc2 pattern (moving shapes, a counter, colour bars) is busy enough that
encoders spend their bitrate, which plain gradients do not; a sine tone stands in for
sound. Special cases: rotation tags, odd sizes, VFR, other codecs, a lying header.
"""

from __future__ import annotations

import math
import struct
from fractions import Fraction
from pathlib import Path

import av
from av.video.frame import PictureType

AUDIO_RATE = 48_000


def write_test_pattern(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 6.0,
    fps: int = 24,
    audio: bool = True,
    container: str = "mp4",
    codec: str = "libx264",
    rotation: int | None = None,
    variable_frame_rate: bool = False,
    black_lead_in_s: float = 0.0,
    keyframe_interval_s: float | None = None,
    b_frames: int = 0,
    audio_priming_hidden: bool = True,
) -> Path:
    """A moving test pattern (plus a tone when audio; its encoder priming hidden by an edit
    list as FFmpeg and phones write it, or left in the audio as some muxers do). variable_frame_rate drops every third
    frame's slot so frame intervals alternate; black_lead_in_s starts with black frames;
    keyframe_interval_s spaces x264's keyframes that far apart (a long-GOP camera or screen
    recording), where the default is x264's own (at most 250 frames, or a scene cut); with it,
    b_frames puts that many B-frames between references, as cameras and phones do."""
    pattern = av.open(f"testsrc2=size={width}x{height}:rate={fps}:duration={seconds}", format="lavfi")
    with pattern, av.open(str(path), mode="w", format=container) as output:
        video = output.add_stream(codec, rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        # Two ticks a frame leave VFR room; AVI has no times, only frame slots: one tick a frame.
        ticks = 1 if container == "avi" else 2
        video.time_base = Fraction(1, fps * ticks)
        if codec == "libx264":
            video.codec_context.options = {"preset": "ultrafast"}
            if keyframe_interval_s is not None:
                gop = round(keyframe_interval_s * fps)
                video.codec_context.options = {
                    "preset": "ultrafast", "g": str(gop),
                    "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes={b_frames}:b-adapt=0",
                }
        if codec == "libvpx-vp9":
            video.codec_context.options = {"deadline": "realtime", "cpu-used": "8"}  # the source only: fast
        if rotation is not None:
            video.set_display_rotation(rotation)
        tone = output.add_stream("aac" if container != "webm" else "libopus", rate=AUDIO_RATE) if audio else None
        for index, frame in enumerate(pattern.decode(video=0)):
            if variable_frame_rate and index % 3 == 2:
                continue
            if index < black_lead_in_s * fps:
                frame = _black_like(frame)
            frame.pts, frame.time_base = index * ticks, Fraction(1, fps * ticks)
            if keyframe_interval_s is not None:
                frame.pict_type = PictureType.NONE  # lavfi marks every frame I: the encoder would obey
            output.mux(video.encode(frame))
        output.mux(video.encode(None))
        if tone is not None:
            _write_tone(output, tone, seconds, audio_priming_hidden)
    return path


def write_lying_duration_mkv(path: Path, *, seconds: float = 2.0, claimed_seconds: float = 3600.0) -> Path:
    """A Matroska file whose Segment Info claims claimed_seconds but holds `seconds`."""
    write_test_pattern(path, width=320, height=180, seconds=seconds, container="matroska", audio=False)
    data = bytearray(path.read_bytes())
    duration_element = data.find(b"\x44\x89\x88")  # EBML Duration, an 8-byte float
    assert duration_element >= 0, "the muxer wrote no Duration element"
    start = duration_element + 3
    # Matroska counts the duration in TimecodeScale units: milliseconds by default.
    data[start : start + 8] = _float64(claimed_seconds * 1000)
    path.write_bytes(bytes(data))
    return path


def _float64(value: float) -> bytes:
    return struct.pack(">d", value)


def _black_like(frame: av.VideoFrame) -> av.VideoFrame:
    black = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for plane, value in zip(black.planes, (16, 128, 128), strict=False):
        plane.update(bytes([value]) * plane.buffer_size)
    return black


def _write_tone(
    output: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float, priming_hidden: bool = True,
) -> None:
    with av.open(f"sine=frequency=440:sample_rate={AUDIO_RATE}:duration={seconds}", format="lavfi") as sine:
        samples = 0
        for frame in sine.decode(audio=0):
            # Times from 0 make the encoder's priming packets negative, which the muxer hides.
            frame.pts = None
            if priming_hidden:
                frame.pts, frame.time_base = samples, Fraction(1, AUDIO_RATE)
            samples += frame.samples
            output.mux(stream.encode(frame))
    output.mux(stream.encode(None))


def write_sync_marks(
    path: Path, *, marks: tuple[float, ...], seconds: float = 10.0, width: int = 320, height: int = 180, fps: int = 24,
    variable_frame_rate: bool = False, video_delay_s: float = 0.0,
) -> Path:
    """A dark picture that turns white for one frame at each mark, and silence with a 1 kHz
    beep starting at each mark: what a player shows and plays together must stay together.
    x264's keyframes come every 10 s, so the marks lie in chunks that start decoding far back.
    video_delay_s: the sound starts that long before the first picture (marks count from it)."""
    gop = 10 * fps
    with av.open(str(path), mode="w") as output:
        video = output.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = Fraction(1, fps * 2)
        video.codec_context.options = {"preset": "ultrafast", "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0"}
        sound = output.add_stream("aac", rate=AUDIO_RATE, layout="mono")
        flashes = {round(mark * fps) for mark in marks}
        for index in range(round(seconds * fps)):
            if variable_frame_rate and index % 3 == 2 and index not in flashes:
                continue
            picture = av.VideoFrame(width, height, "yuv420p")
            for plane, value in zip(picture.planes, (235 if index in flashes else 40, 128, 128), strict=False):
                plane.update(bytes([value]) * plane.buffer_size)
            picture.pts, picture.time_base = index * 2 + round(video_delay_s * fps * 2), Fraction(1, fps * 2)
            output.mux(video.encode(picture))
        output.mux(video.encode(None))
        beeps = [round((mark + video_delay_s) * AUDIO_RATE) for mark in marks]
        total, block = round((seconds + video_delay_s) * AUDIO_RATE), 1024
        for start in range(0, total, block):
            samples = [
                0.5 * math.sin(2 * math.pi * 1000 * n / AUDIO_RATE) if any(b <= n < b + AUDIO_RATE // 10 for b in beeps) else 0.0
                for n in range(start, min(start + block, total))
            ]
            frame = av.AudioFrame(format="flt", layout="mono", samples=len(samples))
            frame.planes[0].update(struct.pack(f"<{len(samples)}f", *samples))
            frame.sample_rate = AUDIO_RATE
            frame.pts, frame.time_base = start, Fraction(1, AUDIO_RATE)  # so the muxer hides the priming
            output.mux(sound.encode(frame))
        output.mux(sound.encode(None))
    return path
