"""One task of a plan: seek, decode a chunk of the source, encode its rung(s), write CMAF.

Every segment of every rung can be made on its own: decoding starts at the source keyframe
at or before the chunk, frames before the chunk are dropped, and each segment starts with
an IDR frame. Times are the video's own (0 = its first picture), never reset per task, so
segments from different tasks and workers play as one stream. The encoder muxes nothing:
its packets become media segments here (fmp4), and its init segment comes from an mp4
muxer header written before the first frame.
"""

from __future__ import annotations

import hashlib
import io
import math
from collections import deque
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.container import InputContainer, OutputContainer
from av.video.frame import PictureType, VideoFrame
from av.video.stream import VideoStream

from adapters.outbound.transcoding import fmp4, source, thumbnails
from adapters.outbound.transcoding.geometry import RungSize
from adapters.outbound.transcoding.ladder_encoder import RungEncoder, configure_x264
from application.errors import UnsupportedMedia
from application.ports import TaskOutput
from domain.ladder import AUDIO_BITRATE, Rung

CMAF_DIR = "cmaf"
AUDIO = "audio"
AUDIO_RATE = 48_000
AUDIO_FRAME_SAMPLES = 1024
_FRAGMENT_HEADER_ONLY = {"movflags": "empty_moov+default_base_moof+frag_custom"}


def init_name(track: str) -> str:
    return f"{CMAF_DIR}/{track}/init.mp4"


def segment_name(track: str, index: int) -> str:
    return f"{CMAF_DIR}/{track}/{index:05d}.m4s"


@dataclass(frozen=True)
class Chunk:
    """A chunk's place on the source timeline, in the source's video time base."""

    first_segment: int
    boundaries: list[int]  # start of each of its segments, then the chunk's end (relative to origin)
    seek: int  # absolute pts of the keyframe to start decoding at
    origin: int  # absolute pts of the video's first picture

    @classmethod
    def of(cls, plan: dict, index: int) -> Chunk:
        first, count, seek = plan["chunks"][index]
        origin, starts = plan["origin"], plan["segments"]
        ends = [*starts, plan["end"]]
        return cls(first, [pts - origin for pts in ends[first : first + count + 1]], seek, origin)

    @property
    def start(self) -> int:
        return self.boundaries[0]

    @property
    def end(self) -> int:
        return self.boundaries[-1]


def time_base_of(plan: dict) -> Fraction:
    return Fraction(*plan["time_base"])


# --- video -------------------------------------------------------------------------------


@dataclass
class _Packet:
    pts: int
    data: bytes
    keyframe: bool


class _RungOutput:
    """An encoder whose packets are collected, with the init segment its configuration makes."""

    def __init__(self, size: RungSize, time_base: Fraction, rate: Fraction, segment_frames: int, threads: int) -> None:
        self.size = size
        self.packets: list[_Packet] = []
        self._buffer = io.BytesIO()
        self._muxer: OutputContainer = av.open(self._buffer, mode="w", format="mp4", options=_FRAGMENT_HEADER_ONLY)
        stream = self._muxer.add_stream("libx264", rate=rate)
        configure_x264(stream, size, time_base, gop_frames=max(segment_frames * 2, 2), threads=threads)
        self._muxer.start_encoding()  # opens the encoder and writes ftyp+moov: nothing else ever
        self.init = self._buffer.getvalue()
        self.stream: VideoStream = stream
        self.encoder = RungEncoder(stream, size, self._collect)

    def _collect(self, packets: list[av.Packet]) -> None:
        for packet in packets:
            assert packet.pts is not None, "an encoder times every packet it gives"
            self.packets.append(_Packet(packet.pts, fmp4.annexb_to_avcc(bytes(packet)), packet.is_keyframe))

    @property
    def config_digest(self) -> str:
        return hashlib.sha256(self.stream.codec_context.extradata or b"").hexdigest()[:32]

    def close(self) -> None:
        try:
            self._muxer.close()
        except av.error.FFmpegError:
            pass  # it never muxed a packet: its trailer is of no use to anyone


def encode_video_chunk(
    path: Path, plan: dict, chunk_index: int, rungs: list[dict], output_dir: Path, *,
    threads: int = 0, poster: bool = False,
) -> TaskOutput:
    chunk = Chunk.of(plan, chunk_index)
    time_base = time_base_of(plan)
    rate = Fraction(*plan["frame_rate"])
    segment_frames = math.ceil(rate * plan.get("segment_seconds", 4))
    sizes = [RungSize(Rung(r["name"], r["height"], r["bitrate"]), r["width"], r["height"]) for r in rungs]
    outputs = [_RungOutput(size, time_base, rate, segment_frames, threads) for size in sizes]
    collector = None
    if poster:
        collector = thumbnails.ThumbnailCollector(plan["width"], plan["height"], float((chunk.end - chunk.start) * time_base))
    try:
        frames = _encode(path, plan, chunk, outputs, collector, threads)
    finally:
        for output in outputs:
            output.close()
    if frames == 0:
        raise UnsupportedMedia(
            f"The video is damaged: no picture could be decoded from {float(chunk.start * time_base):.1f} s on."
        )
    files: list[str] = []
    tracks = {}
    for output in outputs:
        tracks[output.size.rung.name] = _write_rung(output, chunk, time_base, output_dir, files, chunk_index == 0)
    if collector is not None:
        files.append(collector.write_poster(output_dir))
    return TaskOutput(files=tuple(files), result={"tracks": tracks, "frames": frames})


def _encode(
    path: Path, plan: dict, chunk: Chunk, outputs: list[_RungOutput], collector: thumbnails.ThumbnailCollector | None,
    threads: int,
) -> int:
    for output in outputs:
        output.encoder.start()
    count = 0
    time_base = time_base_of(plan)  # the frames' own: _decode_from sets it from the same stream
    try:
        with source.open_source(path, plan.get("container")) as container:
            boundaries = chunk.boundaries[:-1]
            upcoming = 0  # the next segment start
            for frame, relative in _chunk_frames(container, plan, chunk, threads):
                # The first picture at or after a segment start opens the segment, even when the
                # one on the boundary was lost to damage: every segment starts decodable.
                keyframe = upcoming < len(boundaries) and relative >= boundaries[upcoming]
                while upcoming < len(boundaries) and relative >= boundaries[upcoming]:
                    upcoming += 1
                for output in outputs:
                    output.encoder.submit(frame, keyframe)
                if collector is not None:
                    collector.add_poster_candidate(frame, Fraction(relative) * time_base)
                count += 1
        for output in outputs:
            output.encoder.finish()
    except BaseException:
        for output in outputs:
            output.encoder.abort()
        raise
    return count


def _chunk_frames(container: InputContainer, plan: dict, chunk: Chunk, threads: int = 0) -> Iterator[tuple[VideoFrame, int]]:
    """Upright frames of the chunk, pict_type NONE, pts relative to the video's first picture.
    Some demuxers seek coarsely (MPEG-TS lands on a packet after the keyframe asked for): when
    the first frame decoded comes after the chunk's start, or nothing of the chunk decodes,
    seek further back (10 s, 40 s, 160 s… before), and at last decode from the beginning:
    slower, never wrong."""
    # Only possible before the decoder opens: once. One thread when the deployment runs a task
    # per core: frame threads then only add their hand-over cost.
    decoder = source.video_stream(container)
    if threads == 1:
        decoder.codec_context.thread_count = 1
    else:
        decoder.thread_type = "AUTO"
    time_base = time_base_of(plan)
    margins = [0, *(round(Fraction(10 * 4**n) / time_base) for n in range(4))]
    targets: list[int | None] = [chunk.seek - margin for margin in margins if chunk.seek - margin > plan["origin"]] + [None]
    for target in targets:
        frames = _decode_from(container, plan, chunk, target)
        first = next(frames, None)
        if first is not None and (first[1] <= chunk.start or target is None):
            yield first
            yield from frames
            return
        frames.close()


def _decode_from(
    container: InputContainer, plan: dict, chunk: Chunk, target: int | None
) -> Generator[tuple[VideoFrame, int], None, None]:
    """Frames of the chunk, decoding from the keyframe at or before target (None: the beginning)."""
    stream = source.video_stream(container)
    if target is None:
        container.seek(0, backward=True, any_frame=False)
    else:
        container.seek(target, stream=stream, backward=True, any_frame=False)
    upright = None
    last = None
    # Guessed times grow in decode order, and so do the true ones of the pictures the decoder
    # gives back in presentation order: the n-th picture out takes the n-th packet's time.
    decode_order_times: deque[int | None] | None = deque() if plan.get("times_in_decode_order") else None
    try:
        for packet in container.demux(stream):
            if decode_order_times is not None and packet.size:
                decode_order_times.append(packet.pts if packet.pts is not None else packet.dts)
            try:
                frames = packet.decode()
            except source.UNREADABLE:
                frames = []  # one damaged packet costs its picture, not the whole video
                if decode_order_times:
                    decode_order_times.pop()  # nor the times of the pictures after it
            for frame in frames:
                pts = decode_order_times.popleft() if decode_order_times else frame.pts
                if pts is None:
                    continue
                relative = pts - chunk.origin
                if relative >= chunk.end:
                    return
                if relative < chunk.start or (last is not None and relative <= last):
                    continue
                last = relative
                if plan.get("rotation") in source.UPRIGHT_FILTERS:
                    upright = upright or source.upright_graph(stream, plan["rotation"])
                    frame = source.turn_upright(upright, frame)
                frame.pts, frame.time_base = relative, stream.time_base
                frame.pict_type = PictureType.NONE  # keyframes are decided by the segment grid
                yield frame, relative
    except source.UNREADABLE as error:
        raise UnsupportedMedia("The file is damaged or truncated: it stops being readable.") from error


def _write_rung(
    output: _RungOutput, chunk: Chunk, time_base: Fraction, output_dir: Path, files: list[str], with_init: bool,
) -> dict:
    name = output.size.rung.name
    timescale = fmp4.track_timescale(output.init)
    track_id = fmp4.track_id(output.init)

    def ticks(relative: int) -> int:
        return round(Fraction(relative) * time_base * timescale)

    packets = sorted(output.packets, key=lambda packet: packet.pts)
    segments = []
    for offset, (start, end) in enumerate(zip(chunk.boundaries, chunk.boundaries[1:], strict=False)):
        index = chunk.first_segment + offset
        inside = [packet for packet in packets if start <= packet.pts < end]
        if not inside:
            raise UnsupportedMedia(f"The video is damaged: no picture could be decoded near {float(start * time_base):.1f} s.")
        if not inside[0].keyframe:
            raise RuntimeError(f"the {name} encoder did not start segment {index} with a keyframe")
        # The first sample starts the segment even if the picture on the boundary was lost, so
        # the timeline has no hole; each sample lasts until the next one (VFR stays VFR).
        times = [ticks(start)] + [ticks(packet.pts) for packet in inside[1:]] + [ticks(end)]
        samples = [
            fmp4.Sample(packet.data, times[n + 1] - times[n], packet.keyframe) for n, packet in enumerate(inside)
        ]
        data = fmp4.media_segment(index + 1, track_id, times[0], samples)
        relative_name = segment_name(name, index)
        _write(output_dir / relative_name, data)
        files.append(relative_name)
        segments.append({"index": index, "duration": times[-1] - times[0], "size": len(data)})
    if with_init:
        _write(output_dir / init_name(name), output.init)
        files.append(init_name(name))
    return {
        "config": output.config_digest, "codecs": fmp4.init_codecs(output.init), "timescale": timescale,
        "segments": segments,
    }


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# --- audio -------------------------------------------------------------------------------


def encode_audio(path: Path, plan: dict, output_dir: Path) -> TaskOutput:
    """The whole audio track once, cut into segments at the AAC frame nearest each video
    segment boundary. AAC from an MP4-family source that starts with the picture and lasts as
    long is copied (no second generation, no CPU); anything else is encoded to AAC 48 kHz
    stereo from 0 to the video's end. Either way the encoder's priming samples sit before 0,
    hidden by an edit list, so audio starts exactly with the picture."""
    track = _copied_audio(path, plan) or _encoded_audio(path, plan)
    if not track.packets:
        raise UnsupportedMedia("The audio could not be decoded.")
    priming = max(0, -track.packets[0].pts)
    init = fmp4.with_edit_list(track.init, priming)
    timescale = fmp4.track_timescale(init)
    track_id = fmp4.track_id(init)
    time_base = time_base_of(plan)
    boundaries = [round(Fraction(pts - plan["origin"]) * time_base * track.rate) for pts in plan["segments"]]
    groups = _cut_audio(track.packets, boundaries)
    files, segments = [init_name(AUDIO)], []
    _write(output_dir / init_name(AUDIO), init)
    decode_time = 0
    for index, group in enumerate(groups):
        samples = [fmp4.Sample(packet.data, packet.pts_end - packet.pts, True) for packet in group]
        data = fmp4.media_segment(index + 1, track_id, round(Fraction(decode_time * timescale, track.rate)), samples)
        _write(output_dir / segment_name(AUDIO, index), data)
        files.append(segment_name(AUDIO, index))
        duration = sum(sample.duration for sample in samples)
        segments.append({"index": index, "duration": duration, "size": len(data)})
        decode_time += duration
    result = {
        "config": hashlib.sha256(track.extradata).hexdigest()[:32],
        "codecs": fmp4.init_codecs(init), "timescale": timescale, "segments": segments,
        "sample_rate": track.rate, "channels": track.channels, "priming": priming, "copied": track.copied,
    }
    return TaskOutput(files=tuple(files), result={"tracks": {AUDIO: result}})


@dataclass
class _AudioTrack:
    init: bytes  # ftyp+moov of a fragmented MP4 with the track's codec configuration
    packets: list[_AudioPacket]  # in samples; the priming ones before 0
    rate: int
    channels: int
    extradata: bytes
    copied: bool


def _encoded_audio(path: Path, plan: dict) -> _AudioTrack:
    buffer = io.BytesIO()
    muxer = av.open(buffer, mode="w", format="mp4", options=_FRAGMENT_HEADER_ONLY)
    stream = muxer.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
    stream.bit_rate = AUDIO_BITRATE
    muxer.start_encoding()
    init = buffer.getvalue()
    try:
        packets = _encode_audio(path, plan, stream)
    finally:
        try:
            muxer.close()
        except av.error.FFmpegError:
            pass
    return _AudioTrack(init, packets, AUDIO_RATE, 2, stream.codec_context.extradata or b"", copied=False)


_COPIED_CHANNELS = (1, 2)
_COPIED_RATES = (44_100, 48_000)  # what every browser's AAC decoder takes; others are resampled
_MOST_PRIMING = 3 * AUDIO_FRAME_SAMPLES  # encoders prime with 1024 or 2112 samples: more is audio before the picture


def _copied_audio(path: Path, plan: dict) -> _AudioTrack | None:
    """The source's own AAC-LC packets, when copying them keeps every promise of encoding: the
    priming is known (the demuxer shows it before 0), samples are counted in the time base,
    the packets run on without a gap, and they start with the picture and last as long.
    None otherwise (and for ADTS streams, MPEG-TS's, which have no configuration to copy)."""
    time_base = time_base_of(plan)
    origin = Fraction(plan["origin"]) * time_base
    video_end = Fraction(plan["end"] - plan["origin"]) * time_base
    with source.open_source(path, plan.get("container")) as container:
        audio = source.audio_stream(container)
        if audio is None:
            return None
        context = audio.codec_context
        rate = context.sample_rate
        if (context.name != "aac" or context.profile != "LC" or not context.extradata or audio.time_base != Fraction(1, rate)
                or context.channels not in _COPIED_CHANNELS or rate not in _COPIED_RATES):
            return None
        start = round(origin * rate)  # the sample shown with the first picture
        packets: list[_AudioPacket] = []
        try:
            for packet in container.demux(audio):
                if packet.size == 0:
                    continue
                if packet.pts is None or (packets and packet.pts != packets[-1].pts_end + start):
                    return None  # a gap or an overlap: encoding recounts the samples, copying cannot
                # Every AAC-LC frame decodes to 1024 samples; a shorter last duration in the source
                # only trims its padding, which the decoder still outputs.
                relative = packet.pts - start
                packets.append(_AudioPacket(relative, relative + AUDIO_FRAME_SAMPLES, bytes(packet)))
        except source.UNREADABLE:
            return None  # the encoding path reports what is damaged
        # Gapless from before 0 (the priming) to the video's end: it covers the whole picture.
        if (not packets or not -_MOST_PRIMING <= packets[0].pts < 0
                or packets[-1].pts_end < video_end * rate - AUDIO_FRAME_SAMPLES // 2):
            return None
        buffer = io.BytesIO()
        muxer = av.open(buffer, mode="w", format="mp4", options=_FRAGMENT_HEADER_ONLY)
        muxer.add_stream_from_template(audio)
        muxer.start_encoding()
        init = buffer.getvalue()
        try:
            muxer.close()
        except av.error.FFmpegError:
            pass
    return _AudioTrack(init, packets, rate, context.channels, bytes(context.extradata), copied=True)


@dataclass
class _AudioPacket:
    pts: int  # in samples; the priming packets are negative
    pts_end: int
    data: bytes


def _encode_audio(path: Path, plan: dict, stream: av.audio.stream.AudioStream) -> list[_AudioPacket]:
    time_base = time_base_of(plan)
    origin = Fraction(plan["origin"]) * time_base
    video_end = round(Fraction(plan["end"] - plan["origin"]) * time_base * AUDIO_RATE)
    resampler = AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
    fifo = av.AudioFifo()  # whole AAC frames out of whatever sizes the source has
    packets: list[_AudioPacket] = []
    queued = 0  # samples written to the fifo, i.e. the time of the next one
    next_sample = 0  # samples encoded, i.e. the time of the next encoded frame
    started = False
    leading = 0  # samples still to drop: the part of the first sound frame before the picture

    def queue(frames: list[AudioFrame]) -> None:
        nonlocal queued, leading
        for frame in frames:
            frame.pts = None
            fifo.write(frame)
            queued += frame.samples
            if leading and (dropped := min(leading, fifo.samples)):
                fifo.read(dropped)
                queued -= dropped
                leading -= dropped
        encode()

    def encode() -> None:
        nonlocal next_sample
        while fifo.samples >= AUDIO_FRAME_SAMPLES:
            frame = fifo.read(AUDIO_FRAME_SAMPLES)
            assert frame is not None, "the fifo holds at least the samples asked for"
            frame.pts, frame.time_base = next_sample, Fraction(1, AUDIO_RATE)
            next_sample += frame.samples
            packets.extend(_audio_packets(stream.encode(frame)))

    with source.open_source(path, plan.get("container")) as container:
        audio = source.audio_stream(container)
        if audio is None:
            raise UnsupportedMedia("The audio stream disappeared.")
        try:
            for packet in container.demux(audio):
                for frame in source.decode_tolerantly(packet):
                    if not isinstance(frame, AudioFrame):
                        continue
                    if frame.pts is None or frame.time_base is None or frame.sample_rate <= 0:
                        continue
                    start = frame.pts * frame.time_base - origin
                    if start + Fraction(frame.samples, frame.sample_rate) <= 0:
                        continue  # wholly before the first picture
                    if not started:
                        started = True
                        if start < 0:
                            leading = round(-start * AUDIO_RATE)  # sound that starts before the picture
                        else:
                            queue(_silence(round(start * AUDIO_RATE)))  # sound that starts after it
                    frame.pts = None  # counted from here on: source audio timestamps are often jittery
                    queue(resampler.resample(frame))
        except source.UNREADABLE as error:
            raise UnsupportedMedia("The audio is damaged or truncated.") from error
    queue(resampler.resample(None))
    queue(_silence(video_end - queued))  # audio that ends before the picture
    # Whole AAC frames only: a decoder gives 1024 samples for a short last one too, so the
    # track would play longer than its samples' durations say.
    queue(_silence(-queued % AUDIO_FRAME_SAMPLES))
    packets.extend(_audio_packets(stream.encode(None)))
    return packets


def _silence(samples: int) -> list[AudioFrame]:
    if samples <= 0:
        return []
    frame = AudioFrame(format="fltp", layout="stereo", samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = AUDIO_RATE
    return [frame]


def _audio_packets(packets: list[av.Packet]) -> list[_AudioPacket]:
    return [
        _AudioPacket(packet.pts, packet.pts + (packet.duration or AUDIO_FRAME_SAMPLES), bytes(packet))
        for packet in packets if packet.pts is not None
    ]


def _cut_audio(packets: list[_AudioPacket], boundaries: list[int]) -> list[list[_AudioPacket]]:
    """Segment k starts at the AAC frame nearest the k-th video segment's start (the first
    starts with the priming frames)."""
    groups: list[list[_AudioPacket]] = [[]]
    following = iter(boundaries[1:])
    cut = next(following, None)
    for packet in packets:
        half = (packet.pts_end - packet.pts) // 2
        while cut is not None and packet.pts >= cut - half and groups[-1]:
            groups.append([])
            cut = next(following, None)
        groups[-1].append(packet)
    return [group for group in groups if group]
