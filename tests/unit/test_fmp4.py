"""CMAF segment writing and init-segment reading: byte-level checks, and round trips through FFmpeg's demuxer
(PyAV, and ffprobe when installed) on init segments written by FFmpeg's own mp4 muxer."""

from __future__ import annotations

import io
import json
import math
import shutil
import struct
import subprocess
from fractions import Fraction
from pathlib import Path

import av
import pytest
from av.video.frame import PictureType

from adapters.outbound.transcoding.fmp4 import (
    Sample,
    annexb_to_avcc,
    find_box,
    init_codecs,
    media_segment,
    parse_boxes,
    track_id,
    track_timescale,
    with_edit_list,
)
from tests.media_factory import moving_frame

FRAGMENTED = {"movflags": "empty_moov+default_base_moof+frag_custom"}
FPS = 30
FRAMES_PER_SEGMENT = 30
AAC_FRAME = 1024


# --- fixtures: FFmpeg-made init segments and encoder output ------------------------------------


def h264_encoder() -> tuple[bytes, av.VideoStream]:
    """The init segment FFmpeg writes for a 320x240 libx264 stream, and that stream, still open for encoding."""
    buffer = io.BytesIO()
    container = av.open(buffer, "w", format="mp4", options=FRAGMENTED)
    stream = container.add_stream("libx264", rate=FPS, options={"x264-params": "bframes=0"})
    stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
    stream.codec_context.time_base = Fraction(1, FPS)
    container.start_encoding()  # with empty_moov, ftyp + moov are written now
    return buffer.getvalue(), stream


def aac_encoder() -> tuple[bytes, av.AudioStream]:
    buffer = io.BytesIO()
    container = av.open(buffer, "w", format="mp4", options=FRAGMENTED)
    stream = container.add_stream("aac", rate=48_000, layout="stereo")
    container.start_encoding()
    return buffer.getvalue(), stream


@pytest.fixture(scope="module")
def video() -> tuple[bytes, list[av.Packet]]:
    """The H.264 init segment and 60 packets, a keyframe forced at the start of each 30-frame segment."""
    init, stream = h264_encoder()
    packets = []
    for index in range(2 * FRAMES_PER_SEGMENT):
        frame = moving_frame(320, 240, index % 20).reformat(format="yuv420p")
        frame.pts, frame.time_base = index, Fraction(1, FPS)
        if index % FRAMES_PER_SEGMENT == 0:
            frame.pict_type = PictureType.I
        packets += stream.encode(frame)
    packets += stream.encode(None)
    return init, packets


@pytest.fixture(scope="module")
def audio() -> tuple[bytes, list[av.Packet]]:
    """The AAC init segment and the packets of 0.5 s of a stereo tone (priming packet included)."""
    init, stream = aac_encoder()
    packets = []
    for index in range(24):
        packets += stream.encode(tone_frame(index * AAC_FRAME))
    packets += stream.encode(None)
    return init, packets


def tone_frame(first_sample: int) -> av.AudioFrame:
    frame = av.AudioFrame(format="fltp", layout="stereo", samples=AAC_FRAME)
    values = [0.2 * math.sin(2 * math.pi * 440 * (first_sample + n) / 48_000) for n in range(AAC_FRAME)]
    for plane in frame.planes:
        plane.update(struct.pack(f"<{AAC_FRAME}f", *values))
    frame.sample_rate, frame.pts, frame.time_base = 48_000, first_sample, Fraction(1, 48_000)
    return frame


def video_samples(packets: list[av.Packet], ticks_per_frame: int) -> list[Sample]:
    # libx264 emits Annex B even with a global header; mp4 samples are length-prefixed.
    return [Sample(annexb_to_avcc(bytes(packet)), ticks_per_frame, packet.is_keyframe) for packet in packets]


def demux(path: Path) -> tuple[av.stream.Stream, list[av.Packet], int]:
    """The first stream, its packets (demux order, flush packet dropped) and how many frames decode."""
    with av.open(str(path)) as container:
        stream = container.streams[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        frames = sum(len(stream.codec_context.decode(packet)) for packet in packets)
        frames += len(stream.codec_context.decode(None))
        return stream, packets, frames


def ffprobe(path: Path, section: str) -> list[dict]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", f"-show_{section}", "-of", "json", str(path)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)[section]


# --- media_segment layout ----------------------------------------------------------------------


def test_media_segment_layout():
    samples = [Sample(b"abc", 512, True), Sample(b"defgh", 512, False), Sample(b"i", 256, False)]
    segment = media_segment(7, 3, 2**40, samples)

    assert [box_type for box_type, _, _ in parse_boxes(segment)] == ["styp", "moof", "mdat"]
    assert find_box(segment, "styp")[8:] == b"msdh\x00\x00\x00\x00msdhmsix"
    assert struct.unpack(">II", find_box(segment, "moof/mfhd")[8:]) == (0, 7)
    assert struct.unpack(">II", find_box(segment, "moof/traf/tfhd")[8:]) == (0x020000, 3)
    assert struct.unpack(">IQ", find_box(segment, "moof/traf/tfdt")[8:]) == (0x01000000, 2**40)

    trun = find_box(segment, "moof/traf/trun")
    flags, count, data_offset = struct.unpack_from(">IIi", trun, 8)
    entries = [struct.unpack_from(">III", trun, 20 + 12 * i) for i in range(count)]
    assert (flags, count) == (0x000701, 3)
    assert entries == [(512, 3, 0x02000000), (512, 5, 0x01010000), (256, 1, 0x01010000)]

    _, moof_start, _ = parse_boxes(segment)[1]
    assert segment[moof_start + data_offset :] == b"abcdefghi"  # data_offset is relative to the moof


def test_media_segment_refuses_no_samples():
    with pytest.raises(ValueError):
        media_segment(1, 1, 0, [])


def test_annexb_to_avcc_handles_3_and_4_byte_start_codes():
    annexb = b"\x00\x00\x00\x01\x67\x64\x00\x00\x01\x68\xee\x00\x00\x00\x01\x65\x88\x80"
    assert annexb_to_avcc(annexb) == b"\x00\x00\x00\x02\x67\x64\x00\x00\x00\x02\x68\xee\x00\x00\x00\x03\x65\x88\x80"
    with pytest.raises(ValueError):
        annexb_to_avcc(b"\x65\x88")


# --- box reading -------------------------------------------------------------------------------


def test_parse_boxes_reads_largesize_and_size_zero():
    large = struct.pack(">I4sQ", 1, b"free", 16 + 3) + b"xyz"
    to_end = struct.pack(">I4s", 0, b"mdat") + b"rest"
    assert parse_boxes(large + to_end) == [("free", 0, 19), ("mdat", 19, 31)]


def test_parse_boxes_refuses_truncated_box():
    with pytest.raises(ValueError):
        parse_boxes(struct.pack(">I4s", 100, b"moov"))


def test_find_box_returns_whole_box_or_none(video):
    init, _ = video
    mdhd = find_box(init, "moov/trak/mdia/mdhd")
    assert mdhd[4:8] == b"mdhd" and struct.unpack(">I", mdhd[:4])[0] == len(mdhd)
    assert find_box(init, "moov/trak/edts") is None


def test_video_init_fields(video):
    init, _ = video
    # movenc doubles a 1/30 time base until the timescale reaches 10000.
    assert track_timescale(init) == 15_360
    assert track_id(init) == 1
    # High profile; level 1.3 is what x264 picks for 320x240 at 30 fps.
    assert init_codecs(init) == "avc1.64000d"


def test_audio_init_fields(audio):
    init, _ = audio
    assert (track_timescale(init), track_id(init), init_codecs(init)) == (48_000, 1, "mp4a.40.2")


def test_version_1_headers():
    mdhd = struct.pack(">I4sIQQIQI", 44, b"mdhd", 0x01000000, 0, 0, 90_000, 0, 0)
    tkhd = struct.pack(">I4sIQQI", 32, b"tkhd", 0x01000000, 0, 0, 5)
    init = box("moov", box("trak", tkhd + box("mdia", mdhd)))
    assert (track_timescale(init), track_id(init)) == (90_000, 5)


def test_init_codecs_refuses_other_sample_entries(video):
    init, _ = video
    hevc = init.replace(b"avc1", b"hvc1", 1)
    with pytest.raises(ValueError):
        init_codecs(hevc)


def box(box_type: str, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), box_type.encode()) + payload


# --- with_edit_list ----------------------------------------------------------------------------


def test_with_edit_list_inserts_after_tkhd_and_fixes_sizes(audio):
    init, _ = audio
    patched = with_edit_list(init, 1024)

    trak = find_box(patched, "moov/trak")
    assert [box_type for box_type, _, _ in parse_boxes(trak, 8)][:3] == ["tkhd", "edts", "mdia"]
    assert sum(end - start for _, start, end in parse_boxes(patched)) == len(patched)  # moov size covers the growth
    elst = find_box(patched, "moov/trak/edts/elst")
    assert struct.unpack(">IIIihh", elst[8:]) == (0, 1, 0, 1024, 1, 0)  # v0, one entry, duration 0, rate 1.0
    assert init_codecs(patched) == "mp4a.40.2"


def test_with_edit_list_replaces_existing_edit(audio):
    init, _ = audio
    twice = with_edit_list(with_edit_list(init, 1024), 2**33)
    edts_count = sum(1 for box_type, _, _ in parse_boxes(find_box(twice, "moov/trak"), 8) if box_type == "edts")
    elst = find_box(twice, "moov/trak/edts/elst")
    assert edts_count == 1
    assert struct.unpack(">IIQqhh", elst[8:]) == (0x01000000, 1, 0, 2**33, 1, 0)  # 64-bit media_time needs v1


# --- round trips through FFmpeg's demuxer ------------------------------------------------------


@pytest.fixture(scope="module")
def video_file(video, tmp_path_factory) -> tuple[Path, int, int]:
    """init + two 30-frame segments written as one file; and the first segment's tfdt and ticks per frame."""
    init, packets = video
    ticks_per_frame = track_timescale(init) // FPS
    first_tfdt = 10 * track_timescale(init)  # a later segment of a longer video: not starting at 0
    samples = video_samples(packets, ticks_per_frame)
    segments = [
        media_segment(n + 1, track_id(init), first_tfdt + n * FRAMES_PER_SEGMENT * ticks_per_frame,
                      samples[n * FRAMES_PER_SEGMENT : (n + 1) * FRAMES_PER_SEGMENT])
        for n in range(2)
    ]
    path = tmp_path_factory.mktemp("fmp4") / "video.mp4"
    path.write_bytes(init + b"".join(segments))
    return path, first_tfdt, ticks_per_frame


def test_encoder_gave_a_keyframe_at_each_segment_start(video):
    _, packets = video
    assert len(packets) == 60
    assert [i for i, packet in enumerate(packets) if packet.is_keyframe] == [0, 30]


def test_video_segments_round_trip_through_pyav(video_file):
    path, first_tfdt, ticks_per_frame = video_file
    stream, packets, frames = demux(path)

    assert frames == 60
    assert stream.time_base == Fraction(1, 15_360)
    assert [packet.pts for packet in packets] == [first_tfdt + i * ticks_per_frame for i in range(60)]
    assert [i for i, packet in enumerate(packets) if packet.is_keyframe] == [0, 30]


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
def test_video_segments_round_trip_through_ffprobe(video_file):
    path, first_tfdt, ticks_per_frame = video_file
    packets = ffprobe(path, "packets")
    assert [int(packet["pts"]) for packet in packets] == [first_tfdt + i * ticks_per_frame for i in range(60)]
    assert len(ffprobe(path, "frames")) == 60


@pytest.fixture(scope="module")
def audio_file(audio, tmp_path_factory) -> Path:
    """AAC segments with tfdt 0 (decode time counts the priming frame) behind an edit list skipping 1024."""
    init, packets = audio
    samples = [Sample(bytes(packet), AAC_FRAME, True) for packet in packets]
    half = len(samples) // 2
    segments = media_segment(1, 1, 0, samples[:half]) + media_segment(2, 1, half * AAC_FRAME, samples[half:])
    path = tmp_path_factory.mktemp("fmp4") / "audio.mp4"
    path.write_bytes(with_edit_list(init, AAC_FRAME) + segments)
    return path


def test_encoder_primes_with_one_frame(audio):
    _, packets = audio
    assert packets[0].pts == -AAC_FRAME  # why the edit list is needed at all


def test_edit_list_hides_aac_priming(audio, audio_file):
    _, encoded = audio
    with av.open(str(audio_file)) as container:
        stream = container.streams.audio[0]
        packets = [packet for packet in container.demux(stream) if packet.size]
        container.seek(0)
        frames = list(container.decode(stream))

    # ISO BMFF: the edit maps media time 1024 to presentation time 0, so the first sample (media time 0,
    # the priming frame) presents at -1024, before the presentation starts, and the audible audio at 0.
    assert [packet.pts for packet in packets] == [(i - 1) * AAC_FRAME for i in range(len(encoded))]
    assert stream.start_time == 0
    # FFmpeg turns the edit into decoder skip_samples: exactly the 24 tone frames come out, the first at 0.
    assert [frame.pts for frame in frames] == [i * AAC_FRAME for i in range(len(encoded) - 1)]


def test_without_edit_list_audio_starts_late(audio):
    init, packets = audio
    samples = [Sample(bytes(packet), AAC_FRAME, True) for packet in packets]
    with av.open(io.BytesIO(init + media_segment(1, 1, 0, samples))) as container:
        first = next(packet for packet in container.demux(container.streams.audio[0]) if packet.size)
    assert first.pts == 0  # so the audible start lands at +1024: the shift with_edit_list removes


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
def test_edit_list_hides_aac_priming_in_ffprobe(audio_file):
    packets = ffprobe(audio_file, "packets")
    assert [int(packet["pts"]) for packet in packets[:2]] == [-AAC_FRAME, 0]
