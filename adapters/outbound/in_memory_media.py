"""MediaInspector and Transcoder without PyAV, for unit tests and the embedded default.

A FakeVideo stands for a video file: a file whose bytes start with its `head` is that video,
anything else is not one. The inspector answers its MediaInfo and refuses the rest with the
real inspector's UnsupportedMedia; the transcoder indexes it on a regular frame grid and makes
every task's files and measurements the way PyAVTranscoder does, from no decoding at all:
media segments are real CMAF `moof`+`mdat` boxes around placeholder samples, while init
segments, the progressive MP4, the poster and the sprite are placeholder bytes (no `moov`, no
JPEG), named and sized as the application expects.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, BinaryIO

from adapters.outbound.transcoding import fmp4
from adapters.outbound.transcoding.geometry import rung_sizes
from application.errors import UnsupportedMedia
from application.ports import AssemblyOutput, MediaInfo, SourceIndex, SourceInfo, TaskOutput
from domain.ladder import Rung, progressive_rung
from domain.transcode_jobs import AUDIO, LOW, pass_rungs, task_key

TIME_BASE = Fraction(1, 90_000)  # of the indexed pts, as MPEG-TS and many MP4s have it
VIDEO_TIMESCALE = 90_000
AUDIO_TIMESCALE = 48_000
AUDIO_FRAME_SAMPLES = 1024
KEYFRAME_SECONDS = 2
NOT_A_VIDEO = ("The file is not in a supported video container "
               "(MP4, MOV, Matroska/WebM, AVI, MPEG-TS/PS, FLV or Ogg).")  # the real inspector's words
PLACEHOLDER_JPEG = b"\xff\xd8\xff\xe0 placeholder \xff\xd9"  # SOI … EOI, no picture


@dataclass(frozen=True)
class FakeVideo:
    """One video the fakes know, recognised by the first bytes of its file."""

    head: bytes
    width: int = 1280
    height: int = 720
    duration_s: float = 20.0
    frame_rate: int = 25
    has_audio: bool = True
    container: str = "mp4"
    video_codec: str = "h264"
    unreadable: bool = False  # inspected fine, but indexing finds it truncated
    damaged_tasks: frozenset[str] = frozenset()  # task keys ("high:1") whose stretch cannot be decoded

    @property
    def data(self) -> bytes:
        """File bytes that are this video."""
        return self.head + b"\0" * 64

    def media_info(self) -> MediaInfo:
        return MediaInfo(container=self.container, duration_s=self.duration_s, width=self.width, height=self.height,
                         video_codec=self.video_codec, has_audio=self.has_audio)

    def source_info(self) -> SourceInfo:
        return SourceInfo(duration_s=self.duration_s, width=self.width, height=self.height, rotation=0,
                          frame_rate=float(self.frame_rate), has_audio=self.has_audio, video_codec=self.video_codec)


CLIP = FakeVideo(b"fake-video:clip-720p")


def _recognise(head: bytes, videos: Sequence[FakeVideo]) -> FakeVideo | None:
    return next((video for video in videos if head.startswith(video.head)), None)


class InMemoryMediaInspector:
    """MediaInspector: the MediaInfo of a known FakeVideo; UnsupportedMedia for anything else."""

    def __init__(self, *videos: FakeVideo) -> None:
        self.videos = videos or (CLIP,)

    def inspect(self, source: BinaryIO) -> MediaInfo:
        source.seek(0)
        video = _recognise(source.read(max(len(v.head) for v in self.videos)), self.videos)
        if video is None:
            raise UnsupportedMedia(NOT_A_VIDEO)
        return video.media_info()


class InMemoryTranscoder:
    """Transcoder: PyAVTranscoder's outputs for known FakeVideos, made without decoding.
    `encoded` lists the tasks run, in order (redeliveries that encode again included)."""

    def __init__(self, *videos: FakeVideo) -> None:
        self.videos = videos or (CLIP,)
        self.encoded: list[str] = []
        self.assembled = 0
        self._lock = threading.Lock()

    def _video(self, source: Path) -> FakeVideo:
        with source.open("rb") as file:
            video = _recognise(file.read(max(len(v.head) for v in self.videos)), self.videos)
        if video is None or video.unreadable:
            raise UnsupportedMedia("The file is damaged or truncated: it stops being readable.")
        return video

    def index(self, source: Path, container: str | None = None) -> SourceIndex:
        video = self._video(source)
        step = round(1 / (video.frame_rate * TIME_BASE))
        frame_pts = [n * step for n in range(max(1, round(video.duration_s * video.frame_rate)))]
        keyframe_pts = frame_pts[:: video.frame_rate * KEYFRAME_SECONDS]
        return SourceIndex(info=video.source_info(), time_base=TIME_BASE, frame_pts=frame_pts,
                           keyframe_pts=keyframe_pts, end_pts=frame_pts[-1] + step)

    def rung_sizes(self, width: int, height: int, rungs: Sequence[Rung]) -> list[dict[str, Any]]:
        return [
            {"name": size.rung.name, "width": size.width, "height": size.height, "bitrate": size.rung.video_bitrate,
             "target": size.rung.height}
            for size in rung_sizes(width, height, rungs)
        ]

    def encode(self, source: Path, plan: dict[str, Any], pass_name: str, chunk: int, output_dir: Path) -> TaskOutput:
        video = self._video(source)
        key = task_key(pass_name, chunk)
        with self._lock:
            self.encoded.append(key)
        if key in video.damaged_tasks:
            raise UnsupportedMedia(f"The video is damaged: no picture could be decoded in chunk {chunk}.")
        if pass_name == AUDIO:
            return _encode_audio(plan, output_dir)
        rungs = pass_rungs(plan, pass_name)
        if not rungs:
            raise ValueError(f"no such task: {pass_name}:{chunk}")
        files: list[str] = []
        encoded = [_encode_rung(plan, chunk, rung, output_dir, files) for rung in rungs]
        tracks = {rung["name"]: track for rung, (track, _) in zip(rungs, encoded, strict=True)}
        if pass_name == LOW and chunk == 0:
            _write(output_dir / "thumbnails/poster.jpg", PLACEHOLDER_JPEG)
            files.append("thumbnails/poster.jpg")
        return TaskOutput(files=tuple(files), result={"tracks": tracks, "frames": encoded[0][1]})

    def assemble(
        self, cmaf_dir: Path, plan: dict[str, Any], tracks: dict[str, dict[str, Any]], output_dir: Path
    ) -> AssemblyOutput:
        """Joins the tracks' files it was given (missing ones fail, as they would for real)."""
        chosen = progressive_rung(tuple(Rung(r["name"], r.get("target", r["height"]), r["bitrate"]) for r in plan["rungs"]))
        lowest = plan["rungs"][0]["name"]
        joined = {name: _join(cmaf_dir, name, tracks[name]["segments"])
                  for name in {chosen.name, lowest, *([AUDIO] if AUDIO in tracks else [])}}
        progressive, sprite, storyboard = f"mp4/{chosen.name}.mp4", "thumbnails/sprite.jpg", "thumbnails/storyboard.vtt"
        _write(output_dir / progressive, joined[chosen.name] + joined.get(AUDIO, b""))
        _write(output_dir / sprite, PLACEHOLDER_JPEG)
        _write(output_dir / storyboard, _storyboard(plan).encode())
        with self._lock:
            self.assembled += 1
        return AssemblyOutput(files=(progressive, sprite, storyboard), progressive=progressive, sprite=sprite,
                              storyboard=storyboard)


def _encode_rung(
    plan: dict[str, Any], chunk: int, rung: dict[str, Any], output_dir: Path, files: list[str],
) -> tuple[dict[str, Any], int]:
    """The rung's track measurements for the chunk, and its frame count: each segment one
    keyframe then a frame per 1/rate, in VIDEO_TIMESCALE."""
    name = rung["name"]
    first, count, _seek = plan["chunks"][chunk]
    rate = Fraction(*plan["frame_rate"])
    ticks = _ticks(plan, VIDEO_TIMESCALE)
    segments, frames = [], 0
    for index in range(first, first + count):
        start, end = ticks[index], ticks[index + 1]
        durations = _split(end - start, max(1, round(Fraction(end - start, VIDEO_TIMESCALE) * rate)))
        samples = [fmp4.Sample(b"\0\0\0\x04fake", duration, n == 0) for n, duration in enumerate(durations)]
        data = fmp4.media_segment(index + 1, 1, start, samples)
        _write(output_dir / _segment(name, index), data)
        files.append(_segment(name, index))
        segments.append({"index": index, "duration": end - start, "size": len(data)})
        frames += len(samples)
    codecs = "avc1.64001e" if rung["height"] <= 480 else "avc1.64001f" if rung["height"] <= 720 else "avc1.640028"
    if chunk == 0:
        _write(output_dir / f"cmaf/{name}/init.mp4", f"placeholder init: {name} {codecs}".encode())
        files.append(f"cmaf/{name}/init.mp4")
    config = hashlib.sha256(f"{name}:{rung['width']}x{rung['height']}:{rung['bitrate']}".encode()).hexdigest()[:32]
    return {"config": config, "codecs": codecs, "timescale": VIDEO_TIMESCALE, "segments": segments}, frames


def _encode_audio(plan: dict[str, Any], output_dir: Path) -> TaskOutput:
    """The whole audio track, AAC-frame sized samples cut at the video's segment boundaries."""
    ticks = _ticks(plan, AUDIO_TIMESCALE)
    files, segments = ["cmaf/audio/init.mp4"], []
    _write(output_dir / files[0], b"placeholder init: audio mp4a.40.2")
    for index, (start, end) in enumerate(zip(ticks, ticks[1:], strict=False)):
        durations = [AUDIO_FRAME_SAMPLES] * ((end - start) // AUDIO_FRAME_SAMPLES) + [(end - start) % AUDIO_FRAME_SAMPLES]
        samples = [fmp4.Sample(b"fake", duration, True) for duration in durations if duration]
        data = fmp4.media_segment(index + 1, 1, start, samples)
        _write(output_dir / _segment(AUDIO, index), data)
        files.append(_segment(AUDIO, index))
        segments.append({"index": index, "duration": end - start, "size": len(data)})
    track = {"config": hashlib.sha256(b"aac 48000 stereo").hexdigest()[:32], "codecs": "mp4a.40.2",
             "timescale": AUDIO_TIMESCALE, "segments": segments, "sample_rate": AUDIO_TIMESCALE, "channels": 2,
             "priming": 0, "copied": False}
    return TaskOutput(files=tuple(files), result={"tracks": {AUDIO: track}})


def _ticks(plan: dict[str, Any], timescale: int) -> list[int]:
    """Each segment's start, then the video's end, from its first picture, in the timescale."""
    time_base = Fraction(*plan["time_base"])
    return [round(Fraction(pts - plan["origin"]) * time_base * timescale) for pts in [*plan["segments"], plan["end"]]]


def _split(total: int, parts: int) -> list[int]:
    return [total * (n + 1) // parts - total * n // parts for n in range(parts)]


def _segment(track: str, index: int) -> str:
    return f"cmaf/{track}/{index:05d}.m4s"


def _join(cmaf_dir: Path, track: str, segments: list[dict[str, Any]]) -> bytes:
    parts = [cmaf_dir / track / "init.mp4"] + [cmaf_dir / track / f"{s['index']:05d}.m4s" for s in segments]
    return b"".join(part.read_bytes() for part in parts)


def _storyboard(plan: dict[str, Any]) -> str:
    """A cue per segment, each pointing at its tile of the (placeholder) sprite."""
    seconds = [Fraction(tick, AUDIO_TIMESCALE) for tick in _ticks(plan, AUDIO_TIMESCALE)]
    cues = [f"{_vtt_time(start)} --> {_vtt_time(end)}\nsprite.jpg#xywh={160 * n},0,160,90"
            for n, (start, end) in enumerate(zip(seconds, seconds[1:], strict=False))]
    return "WEBVTT\n\n" + "\n\n".join(cues) + "\n"


def _vtt_time(seconds: Fraction) -> str:
    millis = math.floor(seconds * 1000)
    return f"{millis // 3_600_000:02d}:{millis // 60_000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


__all__ = ["CLIP", "FakeVideo", "InMemoryMediaInspector", "InMemoryTranscoder"]
