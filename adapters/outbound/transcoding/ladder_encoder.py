"""Encoding the ladder: one libx264 encoder per rung, each in its own thread.

The decoder thread hands every upright frame to every rung. Each rung thread scales it
(sws_scale) and encodes it (avcodec_send_frame); PyAV releases the GIL in both, so the
rungs use the cores while Python keeps the bookkeeping. Keyframes are forced at the same
source times in every rung and scene-cut detection is off, so all rungs cut segments at
the same instants and a player can switch between them at any segment boundary.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction

import av
from av.video.frame import PictureType, VideoFrame
from av.video.reformatter import VideoReformatter
from av.video.stream import VideoStream

from adapters.outbound.transcoding.geometry import RungSize

X264_PRESET = "veryfast"
FRAME_QUEUE_DEPTH = 8  # frames a rung may lag behind the decoder; bounds memory
_PUT_POLL_SECONDS = 0.5
_JOIN_SECONDS = 30.0
_FINISHED = None  # the inbox item that says "flush and stop"

PacketSink = Callable[[list[av.Packet]], None]


def configure_x264(stream: VideoStream, size: RungSize, time_base: Fraction, gop_frames: int, threads: int = 0) -> None:
    """H.264 high profile, yuv420p, capped VBR around the rung's target bitrate.

    Every setting that reaches the SPS/PPS is pinned, so that every task of a rung, on any
    worker, yields the same codec configuration and one init segment serves them all. No
    B-frames: decode order is presentation order, so segments made by different tasks join
    with no composition offsets or edit lists to reconcile (a few % of bitrate, measured)."""
    bitrate = size.rung.video_bitrate
    stream.width, stream.height, stream.pix_fmt = size.width, size.height, "yuv420p"
    context = stream.codec_context
    # The source's own time base: a coarser 1/fps one would merge VFR frames into one tick.
    stream.time_base = context.time_base = time_base
    context.bit_rate = bitrate
    # PyAV defaults to SLICE threads, measurably slower than x264's frame threads here.
    context.thread_type = "AUTO"
    context.thread_count = threads
    context.options = {
        "preset": X264_PRESET,
        "profile": "high",
        "maxrate": str(bitrate * 3 // 2),
        "bufsize": str(bitrate * 2),
        # Forced frames become IDR frames, so every segment starts decodable on its own;
        # the GOP cap only matters if the forcing ever lapsed.
        "forced-idr": "1",
        "g": str(gop_frames),
        "x264-params": "scenecut=0:open-gop=0:bframes=0:ref=2:cabac=1:weightp=1",
    }


def interpolation(source_height: int, height: int) -> str:
    """Bicubic, except for a reduction by half or more: there an area average (a box filter
    over the source pixels each output pixel covers) looks as good and costs a third, and
    it is what the lowest rungs of a 1080p source are made with, on the way to playable."""
    return "AREA" if height * 2 <= source_height else "BICUBIC"


@dataclass
class _WorkItem:
    frame: VideoFrame
    keyframe: bool


class RungEncoder:
    """A thread that scales and encodes frames for one rung and hands packets to a sink."""

    def __init__(self, stream: VideoStream, size: RungSize, sink: PacketSink) -> None:
        self.stream = stream
        self.size = size
        self._sink = sink
        self._inbox: queue.Queue[_WorkItem | None] = queue.Queue(maxsize=FRAME_QUEUE_DEPTH)
        self._aborted = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"encode-{size.rung.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def submit(self, frame: VideoFrame, keyframe: bool) -> None:
        """Queue a frame, waiting while the rung is behind; raises if the rung failed."""
        self._put(_WorkItem(frame, keyframe))

    def finish(self) -> None:
        """Flush the encoder and wait for the thread; re-raises its failure."""
        self._put(_FINISHED)
        self._thread.join()
        self._raise_failure()

    def abort(self) -> None:
        """Stop without flushing (another part failed) and wait for the thread to end."""
        self._aborted.set()
        try:
            self._inbox.put_nowait(_FINISHED)  # wakes the thread if it waits for work
        except queue.Full:
            pass  # it has work queued, so it is not waiting and will see the flag
        if self._thread.is_alive():
            self._thread.join(_JOIN_SECONDS)

    def _put(self, item: _WorkItem | None) -> None:
        while True:
            self._raise_failure()
            if not self._thread.is_alive():
                raise RuntimeError(f"the {self.size.rung.name} encoder stopped unexpectedly")
            try:
                self._inbox.put(item, timeout=_PUT_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _raise_failure(self) -> None:
        if self._error is not None:
            raise RuntimeError(f"encoding the {self.size.rung.name} rung failed") from self._error

    def _run(self) -> None:
        scaler = VideoReformatter()  # one per thread: a scaler keeps state between frames
        try:
            while not self._aborted.is_set():
                item = self._inbox.get()
                if item is _FINISHED:
                    if not self._aborted.is_set():
                        self._sink(self.stream.encode(None))
                    return
                self._sink(self.stream.encode(self._scaled(scaler, item)))
        except BaseException as error:  # reported to the decoder thread by submit/finish
            self._error = error

    def _scaled(self, scaler: VideoReformatter, item: _WorkItem) -> VideoFrame:
        source = item.frame
        frame = scaler.reformat(
            source, width=self.size.width, height=self.size.height, format="yuv420p",
            interpolation=interpolation(source.height, self.size.height),
        )
        frame.pts, frame.time_base = source.pts, source.time_base
        frame.pict_type = PictureType.I if item.keyframe else PictureType.NONE
        return frame
