"""What the segment tasks write, decoded by two players (issue 9, "Done when").

Each source is cut into at least three chunks (every 4 s segment is its own task), then each
rung's init segment followed by all its media segments is read as one stream, by PyAV
(FFmpeg 8, in-process) and by ffprobe (Debian's FFmpeg 5.1): no picture lost or repeated at
a chunk boundary, times strictly increasing and continuous, keyframes at every segment start
in every rung, one init segment decoding them all, and audio from 0 to the end.

Sources: CFR, VFR, a long-GOP one (keyframes 10 s apart, so chunks seek far back), one with
B-frames (decode order differs from presentation order, as from cameras), an MPEG-TS one
(times start late, seeking is coarse), a rotated phone video and one without audio. AAC is
copied from the MP4 sources, except the VFR one's, which leaves its encoder priming in the
sound, and MPEG-TS's: those two encode it.
320x180 with a three-rung ladder keeps the file fast.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import pytest

from adapters.outbound.pyav_transcoder import PyAVTranscoder
from adapters.outbound.transcoding import tasks
from domain.ladder import Rung
from domain.media import progressive
from domain.transcode_jobs import make_plan
from tests.integration.processed_media import (
    Processed,
    edit_list_media_time,
    ffprobe_packets,
    ffprobe_stream,
    process,
    pyav_audio,
    pyav_decoded_video,
    pyav_packets,
    source_frame_times,
)
from tests.integration.transcode_media import write_sync_marks, write_test_pattern

# Three rungs, and few chunks: the top rung is a pass of its own, so the segments of one rung
# come from `low`, `high` and `top` tasks alike.
SMALL_LADDER = (Rung("120p", 120, 150_000), Rung("144p", 144, 200_000), Rung("180p", 180, 300_000))
AAC_FRAME = Fraction(1024, 48_000)
FEW_MS = Fraction(5, 1000)
SOURCES = {
    "cfr": {"seconds": 9},
    "vfr": {"seconds": 9, "variable_frame_rate": True, "audio_priming_hidden": False},
    "long-gop": {"seconds": 14, "keyframe_interval_s": 10},
    "b-frames": {"seconds": 9, "keyframe_interval_s": 2, "b_frames": 3},
    "mpeg-ts": {"seconds": 9, "keyframe_interval_s": 2, "b_frames": 2, "container": "mpegts"},  # seeks coarsely
    # AVI stores no presentation times: FFmpeg guesses them in decode order, so the pictures a
    # reordering decoder gives back carry each other's times.
    "avi-b-frames": {"seconds": 9, "keyframe_interval_s": 2, "b_frames": 3, "container": "avi"},
    "rotated": {"seconds": 9, "rotation": 90},
    "no-audio": {"seconds": 9, "audio": False},
}


@pytest.fixture(scope="module", params=list(SOURCES))
def processed(request, tmp_path_factory) -> Processed:
    folder = tmp_path_factory.mktemp(request.param)
    suffix = {"mpegts": ".ts", "avi": ".avi"}.get(SOURCES[request.param].get("container", "mp4"), ".mp4")
    source = write_test_pattern(folder / f"source{suffix}", width=320, height=180, **SOURCES[request.param])
    return process(source, folder, ladder=SMALL_LADDER)


@pytest.fixture(scope="module")
def source_times(processed) -> list[Fraction]:
    return source_frame_times(processed.source)


def within_a_tick(a: Fraction, b: Fraction, tick: Fraction) -> bool:
    return abs(a - b) <= tick


def test_the_source_is_cut_into_at_least_three_chunks_and_processed(processed):
    assert processed.outcome == "ready" and processed.video.status == "ready"
    assert processed.chunks >= 3 and len(processed.job.plan["segments"]) == processed.chunks
    assert processed.rung_names == ["120p", "144p", "180p"] and processed.job.plan["top"]
    for rung in processed.rung_names:
        assert len(processed.segments(rung)) == processed.chunks


def test_the_long_gop_source_really_has_keyframes_ten_seconds_apart(processed):
    """The chunks at 4 s and 8 s must start decoding at 0 s: their segments still start on time."""
    if processed.source.parent.name.startswith("long-gop"):
        with av.open(str(processed.source)) as source:
            stream = source.streams.video[0]
            assert [packet.pts * stream.time_base for packet in source.demux(stream) if packet.is_keyframe] == [0, 10]
        time_base = Fraction(*processed.job.plan["time_base"])
        assert [seek * time_base for _, _, seek in processed.job.plan["chunks"]] == [0, 0, 0, 10]


def test_the_avi_source_really_has_times_guessed_in_decode_order(processed):
    """Decoded as they come, its pictures' times go back and forth: the tasks must restamp them."""
    if processed.source.parent.name.startswith("avi-b-frames"):
        assert processed.job.plan["times_in_decode_order"] is True
        with av.open(str(processed.source)) as source:
            times = [frame.pts for frame in source.decode(video=0)]
        assert times != sorted(times)


def test_pyav_reads_each_rung_as_one_seamless_stream(processed, source_times):
    width = {rung.name: (rung.width, rung.height) for rung in processed.video.renditions}
    duration = Fraction(processed.job.plan["end"] - processed.job.plan["origin"]) * Fraction(*processed.job.plan["time_base"])
    for rung in processed.rung_names:
        packets, tick = pyav_packets(processed.joined(rung))
        assert len(packets) == len(source_times), f"{rung}: pictures lost or repeated"
        assert all(within_a_tick(p.pts, t, tick) for p, t in zip(packets, source_times, strict=True)), rung
        assert all(a.pts < b.pts for a, b in zip(packets, packets[1:], strict=False)), f"{rung}: times go back"
        gaps = [(a.pts, b.pts - a.pts - a.duration) for a, b in zip(packets, packets[1:], strict=False)
                if not within_a_tick(a.pts + a.duration, b.pts, tick)]
        assert gaps == [], f"{rung}: a frame's duration does not reach the next frame"
        assert within_a_tick(packets[-1].pts + packets[-1].duration, duration, tick)
        frames = pyav_decoded_video(processed.joined(rung))
        assert len(frames) == len(source_times)
        assert {(frame.width, frame.height, frame.rotation) for frame in frames} == {(*width[rung], 0)}


def test_ffprobe_reads_each_rung_as_one_seamless_stream(processed, source_times):
    for rung in processed.rung_names:
        path = processed.joined_file(rung)
        stream = ffprobe_stream(path)  # decodes every frame: any decode error fails here
        assert stream["codec_name"] == "h264"
        assert int(stream["nb_read_frames"]) == len(source_times), f"{rung}: pictures lost or repeated"
        assert Fraction(stream["start_time"]) == 0
        packets, tick = ffprobe_packets(path)
        assert len(packets) == len(source_times)
        assert all(within_a_tick(pts * tick, t, tick) for (pts, _, _), t in zip(packets, source_times, strict=True)), rung
        assert all(a[0] < b[0] for a, b in zip(packets, packets[1:], strict=False)), f"{rung}: times go back"
        # FFmpeg 5.1 reports no duration for samples whose trun carries them; where it does, they join.
        assert all(a[0] + a[1] == b[0] for a, b in zip(packets, packets[1:], strict=False) if a[1] is not None)
        pyav, pyav_tick = pyav_packets(processed.joined(rung))
        assert [pts * tick for pts, _, _ in packets] == [p.pts for p in pyav] and tick == pyav_tick


def test_keyframes_are_aligned_across_rungs_at_every_segment_start(processed):
    starts = processed.segment_starts()
    for rung in processed.rung_names:
        packets, tick = pyav_packets(processed.joined(rung))
        keyframes = [p.pts for p in packets if p.keyframe]
        assert len(keyframes) == len(starts) and all(within_a_tick(k, s, tick) for k, s in zip(keyframes, starts, strict=True))
        probed, probe_tick = ffprobe_packets(processed.joined_file(rung))
        assert [pts * probe_tick for pts, _, key in probed if key] == keyframes
    keyframes_by_rung = [[p.pts for p in pyav_packets(processed.joined(rung))[0] if p.keyframe] for rung in processed.rung_names]
    assert all(times == keyframes_by_rung[0] for times in keyframes_by_rung)


def test_one_init_segment_per_rung_serves_every_task(processed):
    """The seamless-stream tests decode every segment with this one init; here: every task of a rung
    measured the same codec configuration."""
    for rung in processed.rung_names:
        assert sorted(p.name for p in (processed.cmaf / rung).glob("init*")) == ["init.mp4"]
        tracks = [result["tracks"][rung] for result in processed.job.results.values() if rung in result.get("tracks", {})]
        assert len(tracks) == processed.chunks
        assert {track["config"] for track in tracks} == {processed.job.configs[rung]}


def test_audio_starts_at_zero_and_covers_the_whole_duration(processed):
    plan = processed.job.plan
    if not plan["audio"]:
        assert not (processed.cmaf / "audio").exists() and "audio" not in processed.job.configs
        assert "TYPE=AUDIO" not in (processed.cmaf / "master.m3u8").read_text()
        return
    # AAC in MP4 whose priming the demuxer knows is copied. Encoded: MPEG-TS's ADTS (no
    # configuration to copy) and AAC whose priming was muxed as sound (vfr's).
    copied = processed.source.suffix == ".mp4" and not processed.source.parent.name.startswith("vfr")
    assert processed.job.track_info("audio")["copied"] is copied
    duration = Fraction(plan["end"] - plan["origin"]) * Fraction(*plan["time_base"])
    data = processed.joined("audio")
    init = (processed.cmaf / "audio" / "init.mp4").read_bytes()
    # The AAC encoder's priming (one frame) lies before 0, hidden by the edit list.
    priming = edit_list_media_time(init)
    assert priming == AAC_FRAME
    start, first_decoded, samples = pyav_audio(data)
    assert start == 0 and first_decoded == 0  # FFmpeg 8 applies the edit list to a fragmented track
    packets, tick = pyav_packets(data)
    assert packets[0].pts == -priming
    assert all(a.pts + a.duration == b.pts for a, b in zip(packets, packets[1:], strict=False)), "a gap in the audio"
    end = packets[-1].pts + packets[-1].duration
    with av.open(str(processed.source)) as source:
        source_audio = Fraction(sum(frame.samples for frame in source.decode(audio=0)), 48_000)
    assert duration - FEW_MS <= end <= max(duration, source_audio) + AAC_FRAME + FEW_MS
    assert Fraction(samples, 48_000) == end  # the trimmed priming is not counted: 0 to end
    # ffprobe (FFmpeg 5.1) reads the same packets but does not apply an edit list to fragments:
    # its start is the priming frame's, exactly what the edit list hides.
    probed, probe_tick = ffprobe_packets(processed.joined_file("audio"))
    assert [pts * probe_tick for pts, _, _ in probed] == [p.pts for p in packets]
    assert Fraction(ffprobe_stream(processed.joined_file("audio"))["start_time"]) == pytest.approx(-priming, abs=1e-6)
    # Cut at the AAC frame nearest each video segment's start.
    cuts, at = [], -priming
    for segment in processed.job.track_segments("audio"):
        cuts.append(at)
        at += Fraction(segment["duration"], 48_000)
    starts = processed.segment_starts()
    assert len(cuts) == len(starts)
    assert all(abs(cut - start) <= AAC_FRAME / 2 for cut, start in zip(cuts[1:], starts[1:], strict=True))


def test_rotated_source_comes_out_upright_in_every_segment(processed):
    if processed.source.parent.name.startswith("rotated"):
        assert [(r.width, r.height) for r in processed.video.renditions] == [(126, 224), (144, 256), (180, 320)]
        frames = pyav_decoded_video(processed.joined("180p"))
        assert {(f.width, f.height, f.rotation) for f in frames} == {(180, 320, 0)}


# --- one codec configuration per rung, whatever the worker -------------------------------------


class _TaskTranscoder(PyAVTranscoder):
    """Runs each task with its own encoder settings, as workers configured differently would."""

    def __init__(self, per_chunk: Callable[[int], dict]) -> None:
        super().__init__()
        self.per_chunk = per_chunk

    def encode(self, source, plan, pass_name, chunk, output_dir):
        settings = self.per_chunk(chunk)
        self.threads = settings.get("threads", 0)
        original = tasks.configure_x264

        def configure(stream, size, time_base, gop_frames, threads=0):
            original(stream, size, time_base, gop_frames, threads)
            options = dict(stream.codec_context.options)
            options["x264-params"] += settings.get("x264_params", "")
            stream.codec_context.options = options

        tasks.configure_x264 = configure
        try:
            return super().encode(source, plan, pass_name, chunk, output_dir)
        finally:
            tasks.configure_x264 = original


@pytest.fixture(scope="module")
def short_source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("short")
    return write_test_pattern(folder / "source.mp4", width=320, height=180, seconds=9, audio=False)


def test_workers_with_different_thread_counts_make_one_configuration(short_source, tmp_path):
    per_worker = _TaskTranscoder(lambda chunk: {"threads": chunk + 1})
    output = process(short_source, tmp_path, ladder=SMALL_LADDER[2:], transcoder=per_worker)
    assert output.outcome == "ready" and output.chunks == 3
    assert int(ffprobe_stream(output.joined_file("180p"))["nb_read_frames"]) == 9 * 24


def test_a_task_with_another_codec_configuration_fails_the_video_loudly(short_source, tmp_path):
    different = _TaskTranscoder(lambda chunk: {"x264_params": ":ref=3"} if chunk == 1 else {})
    output = process(short_source, tmp_path, ladder=SMALL_LADDER[2:], transcoder=different)
    assert output.video.status == "failed" and not output.video.renditions
    assert "codec configuration differs" in output.video.failure_reason and "180p" in output.video.failure_reason


def test_a_segment_whose_first_picture_is_lost_starts_at_the_next_one(short_source, tmp_path, monkeypatch):
    """Damage that costs the picture on a segment boundary inside a chunk costs that picture only."""
    chunk_frames = tasks._chunk_frames

    def losing_the_picture_at_8_s(container, plan, chunk, threads=0):
        lost = plan["segments"][2] - plan["origin"]
        return ((frame, relative) for frame, relative in chunk_frames(container, plan, chunk, threads) if relative != lost)

    monkeypatch.setattr(tasks, "_chunk_frames", losing_the_picture_at_8_s)
    output = process(short_source, tmp_path, ladder=SMALL_LADDER[2:], chunking=(1, 2, 1))
    assert output.outcome == "ready" and output.chunks == 2
    packets, _ = pyav_packets(output.joined("180p"))
    assert len(packets) == 9 * 24 - 1
    assert len(pyav_decoded_video(output.joined("180p"))) == 9 * 24 - 1
    starts = [packet.pts for packet in packets if packet.keyframe]
    assert starts == [0, 4, 8]  # the segment still starts at 8 s, with the next picture


class _DamagedPacket:
    """A packet whose picture cannot be decoded."""

    def __init__(self, packet: av.Packet) -> None:
        self.size, self.pts, self.dts = packet.size, packet.pts, packet.dts

    def decode(self) -> list:
        raise av.error.InvalidDataError(1094995529, "damaged")


class _OnePacketDamaged:
    """A source whose n-th video packet is damaged."""

    def __init__(self, container, n: int) -> None:
        self.container, self.n = container, n
        self.streams = container.streams

    def seek(self, *args, **kwargs) -> None:
        self.container.seek(*args, **kwargs)

    def demux(self, stream):
        for index, packet in enumerate(self.container.demux(stream)):
            yield _DamagedPacket(packet) if index == self.n else packet


def test_a_damaged_picture_in_an_avi_costs_that_picture_and_not_the_times_of_those_after_it(tmp_path):
    """Times restamped in decode order: a packet that decodes to nothing gives its time up."""
    path = write_test_pattern(tmp_path / "source.avi", width=320, height=180, seconds=4, keyframe_interval_s=2, b_frames=3,
                              container="avi", audio=False)
    index = PyAVTranscoder(sandbox=None).index(path, "avi")
    assert index.times_in_decode_order
    plan = make_plan(time_base=index.time_base, frame_pts=index.frame_pts, keyframe_pts=index.keyframe_pts,
                     end_pts=index.end_pts, frame_rate=Fraction(24), width=320, height=180, rotation=0, has_audio=False,
                     rungs=[], first_chunk=1, chunk_size=1, spread=1) | {"times_in_decode_order": True}
    chunk = tasks.Chunk.of(plan, 0)
    with av.open(str(path)) as container:
        times = [relative for _, relative in tasks._decode_from(_OnePacketDamaged(container, 30), plan, chunk, None)]
    assert len(times) == 4 * 24 - 1 and times == sorted(set(times))
    assert times[-1] == 4 * 24 - 1  # the last picture keeps its own time: nothing after the damage shifted
    assert len(set(range(4 * 24)) - set(times)) == 1


# --- audio and video stay together -------------------------------------------------------------

MARKS = (2.5, 6.0, 8.0)  # inside the first chunk, inside one that seeks back to 0, on a chunk boundary


MARKED = {
    "cfr": {},
    "vfr": {"variable_frame_rate": True},
    # Sound from 0.5 s before the first picture: its frame across the picture's start is cut there.
    "audio-first": {"video_delay_s": 0.5},
}


@pytest.fixture(scope="module", params=list(MARKED))
def marked(request, tmp_path_factory) -> Processed:
    folder = tmp_path_factory.mktemp(f"marks-{request.param}")
    source = write_sync_marks(folder / "source.mp4", marks=MARKS, **MARKED[request.param])
    return process(source, folder, ladder=SMALL_LADDER[:1])


def flash_times(data: bytes) -> list[Fraction]:
    with av.open(io.BytesIO(data), format="mp4") as container:
        return [frame.pts * frame.time_base for frame in container.decode(video=0) if mean_luma(frame) > 150]


def beep_onsets(data: bytes) -> list[Fraction]:
    """Where the sound starts after at least 0.5 s of silence, in presentation time."""
    onsets, quiet_since = [], 0
    with av.open(io.BytesIO(data), format="mp4") as container:
        for frame in container.decode(audio=0):
            rate = frame.sample_rate
            first = frame.pts * frame.time_base * rate  # in samples
            left = struct.unpack(f"<{frame.samples}f", bytes(frame.planes[0])[: 4 * frame.samples])
            for n in (n for n, value in enumerate(left) if abs(value) >= 0.05):
                if first + n - quiet_since >= rate // 2:
                    onsets.append(Fraction(first + n, rate))
                quiet_since = first + n
    return onsets


def mean_luma(frame: av.VideoFrame) -> float:
    grey = bytes(frame.reformat(width=16, height=16, format="gray").planes[0])
    return sum(grey) / len(grey)


def test_audio_and_video_stay_in_sync_across_chunks(marked):
    assert marked.outcome == "ready" and marked.chunks == 3
    rung = marked.rung_names[0]
    flashes = flash_times(marked.joined(rung))
    beeps = beep_onsets(marked.joined("audio"))
    assert flashes == [Fraction(mark).limit_denominator(48) for mark in MARKS]
    with av.open(str(marked.source)) as source:
        first_picture = next(source.decode(video=0)).time
    source_beeps = [beep - Fraction(first_picture).limit_denominator(48) for beep in beep_onsets(marked.source.read_bytes())]
    assert len(beeps) == len(source_beeps) == len(MARKS)
    heard = [float(beep) for beep in beeps]
    assert all(abs(beep - mark) <= Fraction(1, 1000) for beep, mark in zip(beeps, source_beeps, strict=True)), heard
    assert all(abs(beep - mark) <= Fraction(3, 1000) for beep, mark in zip(beeps, MARKS, strict=True)), heard
    # The progressive MP4 is a remux of the same packets: the same marks.
    assert flash_times(marked.object(progressive(marked.video.renditions).mp4).read_bytes()) == flashes
