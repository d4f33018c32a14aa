"""Running the whole processing flow (plan, every task, assembly) on a real source, and reading
what it wrote back with two players: PyAV (FFmpeg in-process) and ffprobe (Debian's FFmpeg).

The flow is `VideoProcessor` over `PyAVTranscoder`, a POPO event store and `LocalObjectStorage`
in a folder, with every segment its own chunk by default, so even short sources are cut into
several tasks whose segments must join seamlessly.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
import uuid
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import anyio
import av

from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.metrics import InMemoryMetrics
from adapters.outbound.object_storage import LocalObjectStorage
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from adapters.outbound.pyav_transcoder import PyAVTranscoder
from adapters.outbound.transcoding import fmp4
from application.media_layout import plan_folder
from application.processing import VideoProcessor
from application.videos import Videos
from domain.ladder import LADDER, Rung
from domain.transcode_jobs import TranscodeJob, job_id
from domain.videos import Video

EACH_SEGMENT_A_CHUNK = (1, 1, 8)  # and short enough that the top rung is a pass of its own


@dataclass
class Processed:
    """One source through the whole flow. root: the object store's folder."""

    source: Path
    root: Path
    outcome: str
    seconds: float
    video: Video
    job: TranscodeJob | None

    @property
    def folder(self) -> Path:
        """processed/{video}/{plan}"""
        return self.root / plan_folder(self.video.id, self.video.plan_id)

    @property
    def cmaf(self) -> Path:
        return self.folder / "cmaf"

    def object(self, key: str) -> Path:
        return self.root / key

    @property
    def rung_names(self) -> list[str]:
        return [rung.name for rung in self.video.renditions]

    def segments(self, track: str) -> list[Path]:
        return sorted((self.cmaf / track).glob("*.m4s"))

    def joined(self, track: str) -> bytes:
        """One init segment followed by every media segment of the track, in order."""
        return b"".join(part.read_bytes() for part in [self.cmaf / track / "init.mp4", *self.segments(track)])

    def joined_file(self, track: str) -> Path:
        path = self.root / f"joined-{track}.mp4"
        if not path.exists():
            path.write_bytes(self.joined(track))
        return path

    def segment_starts(self) -> list[Fraction]:
        """Where the plan starts each segment, in seconds from the first picture."""
        plan = self.job.plan
        time_base = Fraction(*plan["time_base"])
        return [(pts - plan["origin"]) * time_base for pts in plan["segments"]]

    @property
    def chunks(self) -> int:
        return len(self.job.plan["chunks"])


def process(
    source: Path, folder: Path, *, ladder: tuple[Rung, ...] = LADDER, chunking: tuple[int, int, int] = EACH_SEGMENT_A_CHUNK,
    transcoder: PyAVTranscoder | None = None,
) -> Processed:
    """Upload `source` as a new video (recorded directly, without the HTTP upload) and process it."""
    root = folder / "objects"
    storage = LocalObjectStorage(root)
    videos = Videos(storage=storage, inspector=PyAVMediaInspector(), clock=SettableClock(), ids=RandomIdGenerator(),
                    max_upload_bytes=10**10, env={"PERSISTENCE_MODULE": "eventsourcing.popo"})
    try:
        video_id = uuid.uuid4()
        key = f"raw/{video_id}/original{source.suffix}"
        anyio.run(storage.put_file, key, source, "video/mp4")
        videos.save(Video.upload(video_id, uuid.uuid4(), ("user",), title="t", description="", tags=[], visibility="public",
                                 source_key=key, source_size=max(1, source.stat().st_size), source_content_type="video/mp4",
                                 source_sha256="0" * 64))
        processor = VideoProcessor(videos, transcoder or PyAVTranscoder(), storage, work_dir=folder, ladder=ladder,
                                   chunking=chunking, metrics=InMemoryMetrics())
        started = time.monotonic()
        outcome = anyio.run(processor.process, video_id)
        seconds = time.monotonic() - started
        video = videos.get_aggregate(video_id)
        job = videos.repository.get(job_id(video_id, video.plan_id)) if video.plan_id else None
        return Processed(source, root, outcome, seconds, video, job)
    finally:
        videos.close()


# --- reading sources ----------------------------------------------------------------------------------


def source_frame_times(path: Path) -> list[Fraction]:
    """The decoded source pictures' times, from the first picture (what the output must keep)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        # Sorted: an AVI's guessed times come out of the decoder shuffled (the set is right).
        times = sorted(frame.pts * stream.time_base for frame in container.decode(stream) if frame.pts is not None)
    return [t - times[0] for t in times]


# --- reading outputs with PyAV ------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    pts: Fraction  # seconds
    duration: Fraction  # seconds
    keyframe: bool


def pyav_packets(data: bytes) -> tuple[list[Timed], Fraction]:
    """The packets of a joined track (init + segments), and the stream's tick."""
    with av.open(io.BytesIO(data), format="mp4") as container:
        stream = container.streams[0]
        tick = stream.time_base
        packets = [
            Timed(packet.pts * tick, (packet.duration or 0) * tick, packet.is_keyframe)
            for packet in container.demux(stream) if packet.size and packet.pts is not None
        ]
    return packets, tick


def pyav_decoded_video(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data), format="mp4") as container:
        return list(container.decode(video=0))


def pyav_audio(data: bytes) -> tuple[Fraction, Fraction, int]:
    """(stream start, first decoded frame's time, decoded samples) of a joined audio track."""
    with av.open(io.BytesIO(data), format="mp4") as container:
        stream = container.streams.audio[0]
        start = (stream.start_time or 0) * stream.time_base
        frames = list(container.decode(stream))
    return start, frames[0].pts * frames[0].time_base, sum(frame.samples for frame in frames)


def edit_list_media_time(init: bytes) -> Fraction:
    """Where presentation starts in the track's media time (the AAC priming it hides), in seconds."""
    elst = fmp4.find_box(init, "moov/trak/edts/elst")
    if elst is None:
        return Fraction(0)
    version = elst[8]
    body = elst[12:]
    media_time = int.from_bytes(body[12:20] if version == 1 else body[8:12], "big", signed=True)
    return Fraction(media_time, fmp4.track_timescale(init))


# --- reading outputs with ffprobe -------------------------------------------------------------------


def ffprobe_path() -> str:
    path = shutil.which("ffprobe")
    assert path, "ffprobe is missing: `make test` installs Debian's ffmpeg package, which has it"
    return path


def ffprobe(path: Path, *arguments: str) -> dict:
    """ffprobe's JSON for a file; any error it logs (a decode error included) fails the test."""
    done = subprocess.run([ffprobe_path(), "-v", "error", "-of", "json", *arguments, str(path)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0 and not done.stderr.strip(), f"ffprobe on {path.name}: {done.stderr}"
    return json.loads(done.stdout)


def ffprobe_packets(path: Path) -> tuple[list[tuple[int, int | None, bool]], Fraction]:
    """(pts, duration or None, keyframe) of each packet of the first stream, in its ticks, and the tick."""
    found = ffprobe(path, "-show_entries", "packet=pts,duration,flags:stream=time_base")
    tick = Fraction(found["streams"][0]["time_base"])
    return [(packet["pts"], packet.get("duration"), "K" in packet["flags"]) for packet in found["packets"]], tick


def ffprobe_stream(path: Path) -> dict:
    """The first stream, with every frame decoded and counted (nb_read_frames)."""
    found = ffprobe(path, "-count_frames", "-show_entries", "stream=codec_name,nb_read_frames,start_time,duration,width,height")
    return found["streams"][0]
