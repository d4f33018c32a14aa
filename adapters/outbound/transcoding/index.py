"""Indexing a source without decoding it: every video packet's time and keyframe flag.

The planner cuts the timeline from this, so it must be cheap: a demux-only pass reads the
packets' headers and skips their payloads' decoding entirely."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import BinaryIO

from adapters.outbound.transcoding import source
from application.errors import UnsupportedMedia
from application.ports import SourceIndex


def index_source(path: Path | BinaryIO, container_family: str | None = None) -> SourceIndex:
    info = source.probe(path, container_family)
    if not isinstance(path, Path):
        path.seek(0)
    with source.open_source(path, container_family) as container:
        stream = source.video_stream(container)
        time_base = stream.time_base or Fraction(1, 90_000)
        step = max(1, round(1 / source.frame_rate(stream) / time_base))
        frame_pts: list[int] = []
        keyframe_pts: list[int] = []
        end = None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue  # the flush packet demux() yields at the end
                pts = packet.pts if packet.pts is not None else packet.dts  # AVI often has only the latter
                if pts is None:
                    raise UnsupportedMedia("The video has pictures without timestamps; it cannot be cut into segments.")
                frame_pts.append(pts)
                if packet.is_keyframe:
                    keyframe_pts.append(pts)
                packet_end = pts + (packet.duration or step)
                end = packet_end if end is None else max(end, packet_end)
        except source.UNREADABLE as error:
            raise UnsupportedMedia("The file is damaged or truncated: it stops being readable.") from error
        # Times that only ever grow in decode order, from a codec that reorders pictures, are
        # the demuxer's guesses from the decode order (H.264 with B-frames in AVI).
        reorders = stream.codec_context.has_b_frames
    if not frame_pts or end is None:
        raise UnsupportedMedia("The video stream holds no picture that can be decoded.")
    guessed = bool(reorders) and all(a < b for a, b in zip(frame_pts, frame_pts[1:], strict=False))
    return SourceIndex(info=info, time_base=time_base, frame_pts=frame_pts, keyframe_pts=keyframe_pts, end_pts=end,
                       times_in_decode_order=guessed)
