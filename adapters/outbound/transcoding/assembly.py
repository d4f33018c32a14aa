"""The last step of a plan: a progressive MP4 remuxed from one rung's CMAF segments and the
audio's (no second encode), and the sprite and storyboard from the lowest rung's pictures."""

from __future__ import annotations

import heapq
import shutil
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av

from adapters.outbound.transcoding import thumbnails
from adapters.outbound.transcoding.tasks import AUDIO, init_name, segment_name

PROGRESSIVE_DIR = "mp4"


def progressive_name(rung: str) -> str:
    return f"{PROGRESSIVE_DIR}/{rung}.mp4"


def join_track(cmaf_dir: Path, track: str, segments: list[dict], target: Path) -> Path:
    """init + every media segment of a track, in order: one fragmented MP4 file."""
    with target.open("wb") as joined:
        for name in [init_name(track), *(segment_name(track, segment["index"]) for segment in segments)]:
            with (cmaf_dir.parent / name).open("rb") as part:
                shutil.copyfileobj(part, joined)
    return target


def remux_progressive(video: Path, audio: Path | None, target: Path) -> None:
    """Interleave the two tracks by time into a faststart MP4, so playback starts before the
    download ends."""
    target.parent.mkdir(parents=True, exist_ok=True)
    inputs = [av.open(str(video))] + ([av.open(str(audio))] if audio else [])
    try:
        with av.open(str(target), mode="w", format="mp4", options={"movflags": "+faststart"}) as output:
            streams = [container.streams[0] for container in inputs]
            outputs = [output.add_stream_from_template(stream) for stream in streams]
            ordered = heapq.merge(*(_timed(container, n) for n, container in enumerate(inputs)))
            for _, n, packet in ordered:
                packet.stream = outputs[n]
                output.mux(packet)
    finally:
        for container in inputs:
            container.close()


def _timed(container: av.container.InputContainer, n: int) -> Iterator[tuple[Fraction, int, av.Packet]]:
    stream = container.streams[0]
    time_base = stream.time_base
    assert time_base is not None, "FFmpeg gives every demuxed stream a time base"
    for packet in container.demux(stream):
        if packet.dts is None or packet.size == 0:
            continue
        yield packet.dts * time_base, n, packet


def storyboard(lowest: Path, width: int, height: int, duration: Fraction, output_dir: Path) -> tuple[str, str]:
    """Sprite tiles are 160 pixels wide: the lowest rung's pictures are plenty, and cheap."""
    collector = thumbnails.ThumbnailCollector(width, height, float(duration))
    with av.open(str(lowest)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        time_base = stream.time_base
        assert time_base is not None, "FFmpeg gives every demuxed stream a time base"
        for frame in container.decode(stream):
            if frame.pts is not None:
                collector.add_tile(frame, frame.pts * time_base)
    return collector.write_storyboard(output_dir, duration)


__all__ = ["AUDIO", "join_track", "progressive_name", "remux_progressive", "storyboard"]
