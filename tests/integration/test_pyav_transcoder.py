"""PyAVTranscoder against real media: every output is checked by decoding it with PyAV.

The bundled FFmpeg has no DASH demuxer (it needs libxml2), so DASH is checked by parsing
the MPD and decoding each representation's init + media segments, which are the same
files the HLS playlists (opened with FFmpeg's HLS demuxer) point at.
"""

from __future__ import annotations

import io
import re
import threading
import time
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import av
import pytest

from adapters.outbound.pyav_transcoder import PyAVTranscoder
from adapters.outbound.transcoding import packaging
from application.errors import UnsupportedMedia
from application.ports import TranscodeOutput
from domain.ladder import LADDER, rungs_for_source
from tests.integration.transcode_media import write_lying_duration_mkv, write_test_pattern
from tests.media_factory import write_audio_only, write_truncated_copy

MPD_NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
MAIN_SECONDS = 8
LOWEST = LADDER[:1]


@pytest.fixture(scope="module")
def transcoder() -> PyAVTranscoder:
    return PyAVTranscoder()


@pytest.fixture(scope="module")
def main_source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("main-source")
    return write_test_pattern(folder / "source.mp4", width=854, height=480, seconds=MAIN_SECONDS)


@pytest.fixture(scope="module")
def main_output(transcoder, main_source, tmp_path_factory) -> tuple[Path, TranscodeOutput]:
    """The 854x480 source with audio through its full ladder (240p, 360p, 480p)."""
    output_dir = tmp_path_factory.mktemp("main-output")
    info = transcoder.probe(main_source)
    return output_dir, transcoder.transcode(main_source, output_dir, rungs_for_source(info.width, info.height))


@pytest.fixture(scope="module")
def silent_dark_output(transcoder, tmp_path_factory) -> tuple[Path, TranscodeOutput]:
    """No audio, and the first second is black."""
    folder = tmp_path_factory.mktemp("silent")
    source = write_test_pattern(folder / "source.mp4", width=320, height=180, seconds=6, audio=False, black_lead_in_s=1)
    return folder / "out", transcoder.transcode(source, folder / "out", LOWEST)


# --- helpers -------------------------------------------------------------------------


def mpd_root(output_dir: Path) -> ET.Element:
    return ET.parse(output_dir / "cmaf" / "manifest.mpd").getroot()


def representations(output_dir: Path, content_type: str) -> list[ET.Element]:
    sets = mpd_root(output_dir).iterfind(".//mpd:AdaptationSet", MPD_NS)
    return [rep for s in sets if s.get("contentType") == content_type for rep in s.iterfind("mpd:Representation", MPD_NS)]


def segment_timeline(representation: ET.Element) -> list[tuple[Fraction, Fraction]]:
    """(start, duration) in seconds of each segment the MPD lists."""
    template = representation.find("mpd:SegmentTemplate", MPD_NS)
    scale = int(template.get("timescale"))
    segments, now = [], 0
    for entry in template.iterfind("mpd:SegmentTimeline/mpd:S", MPD_NS):
        now = int(entry.get("t", now))
        for _ in range(int(entry.get("r", 0)) + 1):
            segments.append((Fraction(now, scale), Fraction(int(entry.get("d")), scale)))
            now += int(entry.get("d"))
    return segments


def segment_files(output_dir: Path, representation_id: str) -> list[Path]:
    return sorted((output_dir / "cmaf").glob(f"segment-{representation_id}-*.m4s"))


def open_representation(output_dir: Path, representation_id: str) -> av.container.InputContainer:
    """A representation as one fMP4: its init segment followed by its media segments."""
    parts = [output_dir / "cmaf" / f"init-{representation_id}.m4s", *segment_files(output_dir, representation_id)]
    return av.open(io.BytesIO(b"".join(part.read_bytes() for part in parts)), format="mp4")


def keyframe_times(container: av.container.InputContainer) -> list[Fraction]:
    return [
        packet.pts * packet.time_base
        for packet in container.demux(video=0)
        if packet.is_keyframe and packet.pts is not None
    ]


def first_frame(path_or_file) -> av.VideoFrame:
    with av.open(path_or_file) as container:
        return next(container.decode(video=0))


def mean_luma(frame: av.VideoFrame, box: tuple[int, int, int, int]) -> float:
    """Mean luma inside (x0, y0, x1, y1) of a 16x16 grey copy of the frame."""
    grey = frame.reformat(width=16, height=16, format="gray")
    plane, stride = bytes(grey.planes[0]), grey.planes[0].line_size
    x0, y0, x1, y1 = box
    values = [plane[y * stride + x] for y in range(y0, y1) for x in range(x0, x1)]
    return sum(values) / len(values)


def encoder_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("encode-")]


# --- probing -------------------------------------------------------------------------


def test_probe_describes_the_source(transcoder, main_source):
    info = transcoder.probe(main_source)
    assert (info.width, info.height, info.rotation) == (854, 480, 0)
    assert info.duration_s == pytest.approx(MAIN_SECONDS, abs=0.1)
    assert info.frame_rate == pytest.approx(24)
    assert info.has_audio and info.video_codec == "h264"


def test_probe_reports_display_size_of_a_rotated_phone_video(transcoder, tmp_path):
    source = write_test_pattern(tmp_path / "phone.mp4", width=320, height=180, seconds=1, rotation=90)
    info = transcoder.probe(source)
    # A counter-clockwise display matrix of 90 degrees is a clockwise `rotate` tag of 270.
    assert (info.width, info.height, info.rotation) == (180, 320, 270)


# --- the ladder --------------------------------------------------------------------------


def test_renditions_share_one_shape_with_even_sizes_near_their_nominal_height(main_output):
    _, output = main_output
    assert [r.name for r in output.renditions] == ["240p", "360p", "480p"]
    assert [r.bitrate for r in output.renditions] == [400_000, 800_000, 1_200_000]
    shapes = {Fraction(r.width, r.height) for r in output.renditions}
    assert len(shapes) == 1 and float(shapes.pop()) == pytest.approx(854 / 480, rel=0.01)
    for rendition in output.renditions:
        assert rendition.width % 2 == 0 and rendition.height % 2 == 0
        nominal = int(rendition.name.removesuffix("p"))
        assert abs(rendition.height - nominal) <= 0.03 * nominal and rendition.height <= 480


def test_every_listed_file_exists_and_every_written_file_is_listed(main_output):
    output_dir, output = main_output
    written = {p.relative_to(output_dir).as_posix() for p in output_dir.rglob("*") if p.is_file()}
    assert set(output.files) == written
    for name in (output.hls_master, output.dash_manifest, output.progressive, output.poster, output.sprite, output.storyboard):
        assert name in written
    assert (output.hls_master, output.dash_manifest) == ("cmaf/master.m3u8", "cmaf/manifest.mpd")
    assert output.progressive == "mp4/480p.mp4"
    assert output.source.duration_s == pytest.approx(MAIN_SECONDS, abs=0.1)


def test_hls_master_plays_every_rung_with_audio(main_output):
    output_dir, output = main_output
    with av.open(str(output_dir / output.hls_master)) as hls:
        sizes = sorted((s.codec_context.width, s.codec_context.height) for s in hls.streams.video)
        assert sizes == sorted((r.width, r.height) for r in output.renditions)
        assert {s.codec_context.name for s in hls.streams.video} == {"h264"}
        assert len(hls.streams.audio) == 1 and hls.streams.audio[0].codec_context.name == "aac"
        frame = next(hls.decode(video=0))
        assert frame.format.name == "yuv420p" and frame.rotation == 0


def test_hls_media_playlists_have_four_second_segments(main_output):
    output_dir, _ = main_output
    master = (output_dir / "cmaf" / "master.m3u8").read_text()
    variants = re.findall(r"^(media_\d+\.m3u8)$", master, flags=re.M)
    assert len(variants) == 3 and "RESOLUTION=416x234" in master
    for playlist in variants:
        text = (output_dir / "cmaf" / playlist).read_text()
        assert "#EXT-X-TARGETDURATION:4" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
        durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)]
        assert durations[:-1] == pytest.approx([4.0] * (len(durations) - 1), abs=0.01)
        assert sum(durations) == pytest.approx(MAIN_SECONDS, abs=0.1)


def test_dash_manifest_describes_the_same_segments(main_output):
    output_dir, output = main_output
    root = mpd_root(output_dir)
    assert root.get("type") == "static"
    video = representations(output_dir, "video")
    assert [(int(r.get("width")), int(r.get("height"))) for r in video] == [(r.width, r.height) for r in output.renditions]
    assert [int(r.get("bandwidth")) for r in video] == [r.bitrate for r in output.renditions]
    assert len(representations(output_dir, "audio")) == 1
    for representation in video:
        timeline = segment_timeline(representation)
        assert [d for _, d in timeline[:-1]] == [4] * (len(timeline) - 1)
        assert len(segment_files(output_dir, representation.get("id"))) == len(timeline)


def test_keyframes_are_aligned_every_two_seconds_across_rungs(main_output):
    output_dir, _ = main_output
    keyframes = []
    for representation in representations(output_dir, "video"):
        with open_representation(output_dir, representation.get("id")) as container:
            keyframes.append(keyframe_times(container))
        segment_starts = {start for start, _ in segment_timeline(representation)}
        assert segment_starts <= set(keyframes[-1])  # every segment opens on a keyframe
    assert keyframes[0] == [0, 2, 4, 6]
    assert all(times == keyframes[0] for times in keyframes)


def test_bitrates_follow_the_ladder(main_output):
    output_dir, output = main_output
    measured = []
    for representation, rendition in zip(representations(output_dir, "video"), output.renditions, strict=False):
        size = sum(p.stat().st_size for p in segment_files(output_dir, representation.get("id")))
        measured.append(size * 8 / output.source.duration_s)
        assert 0.5 * rendition.bitrate <= measured[-1] <= 1.5 * rendition.bitrate
    assert measured == sorted(measured)


def test_progressive_mp4_is_faststart_and_holds_the_480p_rung_with_audio(main_output):
    output_dir, output = main_output
    path = output_dir / output.progressive
    data = path.read_bytes()
    assert 0 < data.find(b"moov") < data.find(b"mdat")
    with av.open(str(path)) as mp4:
        video = mp4.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (832, 468)
        assert len(mp4.streams.audio) == 1
        assert mp4.duration / av.time_base == pytest.approx(MAIN_SECONDS, abs=0.1)
        assert keyframe_times(mp4) == [0, 2, 4, 6]  # the same packets as the CMAF 480p rung


def test_thumbnails_decode_and_the_storyboard_maps_the_sprite(main_output):
    output_dir, output = main_output
    poster = first_frame(str(output_dir / output.poster))
    assert (poster.width, poster.height) == (854, 480)
    sprite = first_frame(str(output_dir / output.sprite))
    assert av.open(str(output_dir / output.sprite)).streams.video[0].codec_context.name == "mjpeg"
    cues = (output_dir / output.storyboard).read_text().split("\n\n")
    assert cues[0] == "WEBVTT"
    cues = [cue for cue in cues[1:] if cue.strip()]
    assert len(cues) == MAIN_SECONDS // 2
    previous_end = "00:00:00.000"
    for cue in cues:
        timing, target = cue.splitlines()
        start, end = timing.split(" --> ")
        assert start == previous_end and start < end
        previous_end = end
        x, y, w, h = map(int, re.fullmatch(r"sprite\.jpg#xywh=(\d+),(\d+),(\d+),(\d+)", target).groups())
        assert w == 160 and x + w <= sprite.width and y + h <= sprite.height
    assert previous_end == "00:00:08.000"


# --- special sources ---------------------------------------------------------------------


def test_no_audio_in_means_no_audio_out(silent_dark_output):
    output_dir, output = silent_dark_output
    assert not output.source.has_audio
    assert representations(output_dir, "audio") == []
    with av.open(str(output_dir / output.hls_master)) as hls:
        assert not hls.streams.audio
    with av.open(str(output_dir / output.progressive)) as mp4:
        assert not mp4.streams.audio


def test_poster_skips_a_black_opening(silent_dark_output):
    output_dir, output = silent_dark_output
    poster = first_frame(str(output_dir / output.poster))
    assert mean_luma(poster, (0, 0, 16, 16)) > 40


def test_rotated_phone_video_comes_out_upright(transcoder, tmp_path):
    source = tmp_path / "phone.mp4"
    # Bright top-left quadrant; the display matrix says "turn 90 degrees counter-clockwise",
    # which brings that quadrant to the bottom left.
    with av.open(str(source), "w") as output:
        stream = output.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 320, 180, "yuv420p"
        stream.set_display_rotation(90)
        rows = [bytes([255] * 160 * 4 + [0] * 160 * 4) if y < 90 else bytes(320 * 4) for y in range(180)]
        for index in range(24):
            frame = av.VideoFrame.from_bytes(b"".join(rows), 320, 180, format="rgba")
            frame.pts, frame.time_base = index, Fraction(1, 24)
            output.mux(stream.encode(frame))
        output.mux(stream.encode(None))
    output = transcoder.transcode(source, tmp_path / "out", LOWEST)
    assert [(r.width, r.height) for r in output.renditions] == [(180, 320)]
    picture = first_frame(str(tmp_path / "out" / output.progressive))
    assert (picture.width, picture.height, picture.rotation) == (180, 320, 0)
    assert mean_luma(picture, (0, 9, 7, 16)) > 200  # bottom-left is bright
    assert mean_luma(picture, (9, 0, 16, 7)) < 50  # top-right is dark


def test_odd_sized_vp9_source_gets_even_sizes(transcoder, tmp_path):
    source = write_test_pattern(
        tmp_path / "odd.webm", width=853, height=481, seconds=1, fps=12, codec="libvpx-vp9", container="webm", audio=False
    )
    info = transcoder.probe(source)
    assert info.video_codec == "vp9"
    output = transcoder.transcode(source, tmp_path / "out", rungs_for_source(info.width, info.height)[:2])
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in output.renditions)
    assert len({Fraction(r.width, r.height) for r in output.renditions}) == 1


def test_hevc_source(transcoder, tmp_path):
    source = write_test_pattern(tmp_path / "hevc.mp4", width=320, height=180, seconds=1, codec="libx265", audio=False)
    output = transcoder.transcode(source, tmp_path / "out", LOWEST)
    assert output.source.video_codec == "hevc"
    with av.open(str(tmp_path / "out" / output.hls_master)) as hls:
        assert hls.streams.video[0].codec_context.name == "h264"


def test_variable_frame_rate_keeps_keyframes_on_the_two_second_grid(transcoder, tmp_path):
    source = write_test_pattern(tmp_path / "vfr.mp4", width=320, height=180, seconds=5, variable_frame_rate=True)
    output = transcoder.transcode(source, tmp_path / "out", LOWEST)
    with av.open(str(tmp_path / "out" / output.progressive)) as mp4:
        assert keyframe_times(mp4) == [0, 2, 4]
    assert output.source.duration_s == pytest.approx(5, abs=0.1)


def test_header_claiming_an_hour_finishes_promptly_with_the_real_duration(transcoder, tmp_path):
    source = write_lying_duration_mkv(tmp_path / "liar.mkv", seconds=2, claimed_seconds=3600)
    assert transcoder.probe(source).duration_s == pytest.approx(3600)
    started = time.monotonic()
    output = transcoder.transcode(source, tmp_path / "out", LOWEST)
    assert time.monotonic() - started < 20
    assert output.source.duration_s == pytest.approx(2, abs=0.1)
    manifest = (tmp_path / "out" / output.dash_manifest).read_text()
    presented = re.search(r'mediaPresentationDuration="PT([\d.]+)S"', manifest)
    # The muxer writes one decimal, truncated, and leaves out the last frame's duration.
    assert float(presented.group(1)) == pytest.approx(2, abs=0.15)


# --- refusals and failures -----------------------------------------------------------------


@pytest.mark.parametrize("kind", ["truncated", "garbage", "audio only", "empty"])
def test_unusable_input_is_unsupported_media(transcoder, tmp_path, kind):
    source = tmp_path / "upload"
    if kind == "truncated":  # moov comes last, so half the file has no index at all
        write_truncated_copy(write_test_pattern(tmp_path / "full.mp4", width=160, height=90, seconds=1), source)
    elif kind == "garbage":
        source.write_bytes(b"definitely not a video " * 500)
    elif kind == "audio only":
        write_audio_only(source, "m4a")
    else:
        source.write_bytes(b"")
    with pytest.raises(UnsupportedMedia) as refused:
        transcoder.transcode(source, tmp_path / "out", LOWEST)
    assert str(refused.value)
    assert encoder_threads() == []


def test_a_failure_while_encoding_stops_every_encoder_thread(transcoder, tmp_path, monkeypatch):
    source = write_test_pattern(tmp_path / "source.mp4", width=320, height=180, seconds=3)
    writes = 0
    original_write = packaging.Muxer.write

    def failing_write(self, packets):
        nonlocal writes
        writes += 1
        if writes == 20:
            raise OSError("disk full")
        original_write(self, packets)

    monkeypatch.setattr(packaging.Muxer, "write", failing_write)
    with pytest.raises((OSError, RuntimeError)):
        transcoder.transcode(source, tmp_path / "out", LADDER[:2])
    assert encoder_threads() == []
