"""PyAVTranscoder against real media, driven through the whole flow: VideoProcessor plans the
video, runs every segment task (each 4 s segment its own chunk, so even these short sources
make several tasks), publishes the manifests and assembles the progressive MP4 and the
storyboard. Every output is checked by decoding it with PyAV.

The bundled FFmpeg has no DASH demuxer (it needs libxml2), so DASH is checked by parsing the
MPD and decoding each representation's init + media segments, which are the same files the
HLS playlists (opened with FFmpeg's HLS demuxer) point at. The seamless joining of segments
from different tasks, with a second player (ffprobe), is in test_segment_tasks.py.
"""

from __future__ import annotations

import re
import threading
import time
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import av
import pytest

from adapters.outbound.pyav_transcoder import PyAVTranscoder
from adapters.outbound.transcoding import fmp4
from application.errors import UnsupportedMedia
from domain.ladder import LADDER
from domain.media import named, progressive
from tests.integration.processed_media import Processed, ffprobe, process, pyav_packets
from tests.integration.transcode_media import write_lying_duration_mkv, write_test_pattern
from tests.media_factory import write_audio_only, write_truncated_copy

MPD_NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}
MAIN_SECONDS = 14
LOWEST = LADDER[:1]
AAC_FRAME_S = 1024 / 48_000


@pytest.fixture(scope="module")
def transcoder() -> PyAVTranscoder:
    return PyAVTranscoder()


@pytest.fixture(scope="module")
def main_source(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("main-source")
    return write_test_pattern(folder / "source.mp4", width=854, height=480, seconds=MAIN_SECONDS)


@pytest.fixture(scope="module")
def main(main_source, tmp_path_factory) -> Processed:
    """The 854x480 source with audio through its full ladder (240p, 360p, 480p), in 4 chunks."""
    return process(main_source, tmp_path_factory.mktemp("main"))


@pytest.fixture(scope="module")
def silent_dark(tmp_path_factory) -> Processed:
    """No audio, and the first second is black."""
    folder = tmp_path_factory.mktemp("silent")
    source = write_test_pattern(folder / "source.mp4", width=320, height=180, seconds=6, audio=False, black_lead_in_s=1)
    return process(source, folder, ladder=LOWEST)


# --- helpers -------------------------------------------------------------------------


def mpd_root(output: Processed) -> ET.Element:
    return ET.parse(output.cmaf / "manifest.mpd").getroot()


def representations(output: Processed, content_type: str) -> list[ET.Element]:
    sets = mpd_root(output).iterfind(".//mpd:AdaptationSet", MPD_NS)
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


def keyframe_times(container: av.container.InputContainer) -> list[Fraction]:
    stream = container.streams.video[0]
    return [packet.pts * packet.time_base for packet in container.demux(stream) if packet.is_keyframe and packet.pts is not None]


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


# --- indexing ------------------------------------------------------------------------


def test_index_describes_the_source_without_decoding_it(transcoder, main_source):
    index = transcoder.index(main_source)
    info = index.info
    assert (info.width, info.height, info.rotation) == (854, 480, 0)
    assert info.duration_s == pytest.approx(MAIN_SECONDS, abs=0.1)
    assert info.frame_rate == pytest.approx(24)
    assert info.has_audio and info.video_codec == "h264"
    assert len(index.frame_pts) == MAIN_SECONDS * 24
    assert index.end_pts * index.time_base == pytest.approx(MAIN_SECONDS, abs=0.05)
    assert set(index.keyframe_pts) <= set(index.frame_pts) and min(index.frame_pts) in index.keyframe_pts


def test_index_reports_display_size_of_a_rotated_phone_video(transcoder, tmp_path):
    source = write_test_pattern(tmp_path / "phone.mp4", width=320, height=180, seconds=1, rotation=90)
    info = transcoder.index(source).info
    # A counter-clockwise display matrix of 90 degrees is a clockwise `rotate` tag of 270.
    assert (info.width, info.height, info.rotation) == (180, 320, 270)


# --- the ladder --------------------------------------------------------------------------


def test_the_video_is_ready_after_several_tasks(main):
    assert main.outcome == "ready" and main.video.status == "ready"
    assert main.chunks == 4  # segments at 0, 4, 8 and 12 s, each its own task
    assert main.video.duration_s == pytest.approx(MAIN_SECONDS, abs=0.1)
    assert (main.video.width, main.video.height) == (854, 480)


def test_renditions_share_one_shape_with_even_sizes_near_their_nominal_height(main):
    renditions = main.video.renditions
    assert [r.name for r in renditions] == ["240p", "360p", "480p"]
    assert [r.bitrate for r in renditions] == [400_000, 800_000, 1_200_000]
    shapes = {Fraction(r.width, r.height) for r in renditions}
    assert len(shapes) == 1 and float(shapes.pop()) == pytest.approx(854 / 480, rel=0.01)
    for rendition in renditions:
        assert rendition.width % 2 == 0 and rendition.height % 2 == 0
        nominal = int(rendition.name.removesuffix("p"))
        assert abs(rendition.height - nominal) <= 0.03 * nominal and rendition.height <= 480


def test_every_published_object_exists_under_the_plan(main):
    video = main.video
    mp4 = progressive(video.renditions)
    for key in [*named(video.manifests).values(), *named(video.thumbnails).values(), *(r.hls for r in video.renditions),
                mp4.mp4]:
        assert main.object(key).is_file(), key
    assert video.manifests.hls.endswith("cmaf/master.m3u8") and video.manifests.dash.endswith("cmaf/manifest.mpd")
    assert mp4.mp4.endswith("mp4/480p.mp4") and mp4.name == "480p"
    plan = f"processed/{video.id}/{video.plan_id}/"
    assert all(key.startswith(plan) for key in (video.manifests.hls, video.manifests.dash, mp4.mp4))
    for track in ["240p", "360p", "480p", "audio"]:
        assert (main.cmaf / track / "init.mp4").is_file()
        assert [p.name for p in main.segments(track)] == [f"{n:05d}.m4s" for n in range(4)]


def test_hls_master_plays_every_rung_with_audio(main):
    with av.open(str(main.object(main.video.manifests.hls))) as hls:
        sizes = sorted((s.codec_context.width, s.codec_context.height) for s in hls.streams.video)
        assert sizes == sorted((r.width, r.height) for r in main.video.renditions)
        assert {s.codec_context.name for s in hls.streams.video} == {"h264"}
        assert len(hls.streams.audio) == 1 and hls.streams.audio[0].codec_context.name == "aac"
        frame = next(hls.decode(video=0))
        assert frame.format.name == "yuv420p" and frame.rotation == 0


def test_hls_media_playlists_have_four_second_segments(main):
    master = (main.cmaf / "master.m3u8").read_text()
    variants = re.findall(r"^(\d+p\.m3u8)$", master, flags=re.M)
    assert variants == ["240p.m3u8", "360p.m3u8", "480p.m3u8"] and "RESOLUTION=416x234" in master
    for playlist in [*variants, "audio.m3u8"]:
        text = (main.cmaf / playlist).read_text()
        assert "#EXT-X-TARGETDURATION:4" in text and text.rstrip().endswith("#EXT-X-ENDLIST")
        assert '#EXT-X-MAP:URI="' in text
        durations = [float(d) for d in re.findall(r"#EXTINF:([\d.]+),", text)]
        assert len(durations) == 4
        if playlist == "audio.m3u8":
            # Cut at the AAC frame nearest each boundary. The first segment also holds the encoder's
            # priming frame (hidden by the edit list) and the last the source's own AAC padding.
            assert durations[1:3] == pytest.approx([4.0] * 2, abs=AAC_FRAME_S)
            assert MAIN_SECONDS <= sum(durations) <= MAIN_SECONDS + 3 * AAC_FRAME_S
        else:
            assert durations == pytest.approx([4.0, 4.0, 4.0, 2.0], abs=1e-6)


def test_dash_manifest_describes_the_same_segments(main):
    root = mpd_root(main)
    assert root.get("type") == "static"
    presented = float(root.get("mediaPresentationDuration").removeprefix("PT").removesuffix("S"))
    assert presented == pytest.approx(MAIN_SECONDS, abs=0.05)
    video = representations(main, "video")
    renditions = main.video.renditions
    assert [(int(r.get("width")), int(r.get("height"))) for r in video] == [(r.width, r.height) for r in renditions]
    assert all(s.get("bitstreamSwitching") is None for s in root.iterfind(".//mpd:AdaptationSet", MPD_NS))
    assert len(representations(main, "audio")) == 1
    for representation in video:
        timeline = segment_timeline(representation)
        assert [start for start, _ in timeline] == [0, 4, 8, 12]
        assert [d for _, d in timeline] == [4, 4, 4, 2]
        name = representation.get("id")
        assert len(main.segments(name)) == len(timeline)
        packets, _ = pyav_packets(main.joined(name))
        assert [p.pts for p in packets if p.keyframe] == [start for start, _ in timeline]  # what the MPD says is there


@pytest.mark.parametrize("manifest", ["hls", "dash"])
def test_ffprobe_opens_the_hls_master_and_the_dash_manifest(main, manifest):
    """Debian's FFmpeg has the DASH demuxer the bundled one lacks: a second player for both."""
    found = ffprobe(main.object(getattr(main.video.manifests, manifest)), "-show_entries", "stream=codec_name,width,height")
    streams = found["streams"]
    sizes = sorted((s["width"], s["height"]) for s in streams if s["codec_name"] == "h264")
    assert set(sizes) == {(r.width, r.height) for r in main.video.renditions}
    assert {s["codec_name"] for s in streams} == {"h264", "aac"}


def test_keyframes_are_aligned_at_every_segment_start_across_rungs(main):
    keyframes = []
    for rendition in main.video.renditions:
        packets, _ = pyav_packets(main.joined(rendition.name))
        keyframes.append([p.pts for p in packets if p.keyframe])
    assert keyframes[0] == [0, 4, 8, 12]
    assert all(times == keyframes[0] for times in keyframes)


def test_bitrates_follow_the_ladder(main):
    measured = []
    for rendition in main.video.renditions:
        size = sum(p.stat().st_size for p in main.segments(rendition.name))
        measured.append(size * 8 / MAIN_SECONDS)
        assert 0.5 * rendition.bitrate <= measured[-1] <= 1.5 * rendition.bitrate, rendition.name
    assert measured == sorted(measured)


def test_progressive_mp4_is_faststart_and_holds_the_480p_rung_with_audio(main):
    path = main.object(progressive(main.video.renditions).mp4)
    data = path.read_bytes()
    top = [box for box, _, _ in fmp4.parse_boxes(data)]
    assert "moof" not in top and top.index("moov") < top.index("mdat")
    with av.open(str(path)) as mp4:
        video = mp4.streams.video[0]
        assert (video.codec_context.width, video.codec_context.height) == (832, 468)
        assert len(mp4.streams.audio) == 1
        assert mp4.duration / av.time_base == pytest.approx(MAIN_SECONDS, abs=0.1)
        assert video.frames == MAIN_SECONDS * 24
        assert keyframe_times(mp4) == [0, 4, 8, 12]  # the same packets as the CMAF 480p rung: a remux


def test_thumbnails_decode_and_the_storyboard_maps_the_sprite(main):
    thumbnails = main.video.thumbnails
    poster = first_frame(str(main.object(thumbnails.poster)))
    assert (poster.width, poster.height) == (854, 480)
    sprite_path = str(main.object(thumbnails.sprite))
    sprite = first_frame(sprite_path)
    with av.open(sprite_path) as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
    cues = main.object(thumbnails.storyboard).read_text().split("\n\n")
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
    assert previous_end == "00:00:14.000"


# --- special sources ---------------------------------------------------------------------


def test_no_audio_in_means_no_audio_out(silent_dark):
    assert silent_dark.outcome == "ready"
    assert not silent_dark.job.plan["audio"]
    assert representations(silent_dark, "audio") == []
    assert not (silent_dark.cmaf / "audio").exists()
    with av.open(str(silent_dark.object(silent_dark.video.manifests.hls))) as hls:
        assert not hls.streams.audio
    with av.open(str(silent_dark.object(progressive(silent_dark.video.renditions).mp4))) as mp4:
        assert not mp4.streams.audio


def test_poster_skips_a_black_opening(silent_dark):
    poster = first_frame(str(silent_dark.object(silent_dark.video.thumbnails.poster)))
    assert mean_luma(poster, (0, 0, 16, 16)) > 40


def test_rotated_phone_video_comes_out_upright(tmp_path):
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
    output = process(source, tmp_path, ladder=LOWEST)
    assert [(r.width, r.height) for r in output.video.renditions] == [(180, 320)]
    mp4 = output.object(progressive(output.video.renditions).mp4)
    for picture in (first_frame(str(mp4)), first_frame(output.joined_file("240p"))):
        assert (picture.width, picture.height, picture.rotation) == (180, 320, 0)
        assert mean_luma(picture, (0, 9, 7, 16)) > 200  # bottom-left is bright
        assert mean_luma(picture, (9, 0, 16, 7)) < 50  # top-right is dark


def test_odd_sized_vp9_source_gets_even_sizes(transcoder, tmp_path):
    source = write_test_pattern(
        tmp_path / "odd.webm", width=853, height=481, seconds=1, fps=12, codec="libvpx-vp9", container="webm", audio=False
    )
    assert transcoder.index(source).info.video_codec == "vp9"
    output = process(source, tmp_path, ladder=LADDER[:2])
    assert output.outcome == "ready"
    renditions = output.video.renditions
    assert len(renditions) == 2 and all(r.width % 2 == 0 and r.height % 2 == 0 for r in renditions)
    assert len({Fraction(r.width, r.height) for r in renditions}) == 1
    assert first_frame(output.joined_file(renditions[1].name)).width == renditions[1].width


def test_hevc_source(tmp_path):
    source = write_test_pattern(tmp_path / "hevc.mp4", width=320, height=180, seconds=1, codec="libx265", audio=False)
    output = process(source, tmp_path, ladder=LOWEST)
    assert output.outcome == "ready"
    with av.open(str(output.object(output.video.manifests.hls))) as hls:
        assert hls.streams.video[0].codec_context.name == "h264"


def test_variable_frame_rate_keeps_keyframes_on_the_four_second_grid(tmp_path):
    source = write_test_pattern(tmp_path / "vfr.mp4", width=320, height=180, seconds=9, variable_frame_rate=True)
    output = process(source, tmp_path, ladder=LOWEST)
    assert output.chunks == 3
    with av.open(str(output.object(progressive(output.video.renditions).mp4))) as mp4:
        assert keyframe_times(mp4) == [0, 4, 8]
        assert mp4.streams.video[0].frames == 24 * 9 * 2 // 3
    assert output.video.duration_s == pytest.approx(9, abs=0.1)


def test_header_claiming_an_hour_finishes_promptly_with_the_real_duration(transcoder, tmp_path):
    source = write_lying_duration_mkv(tmp_path / "liar.mkv", seconds=2, claimed_seconds=3600)
    assert transcoder.index(source).info.duration_s == pytest.approx(3600)
    started = time.monotonic()
    output = process(source, tmp_path, ladder=LOWEST)
    assert time.monotonic() - started < 20
    assert output.outcome == "ready" and output.chunks == 1
    assert output.video.duration_s == pytest.approx(2, abs=0.1)
    manifest = (output.cmaf / "manifest.mpd").read_text()
    presented = re.search(r'mediaPresentationDuration="PT([\d.]+)S"', manifest)
    assert float(presented.group(1)) == pytest.approx(2, abs=0.05)


# --- refusals and failures -----------------------------------------------------------------


def unusable_source(folder: Path, kind: str) -> Path:
    source = folder / "upload"
    if kind == "truncated":  # moov comes last, so half the file has no index at all
        write_truncated_copy(write_test_pattern(folder / "full.mp4", width=160, height=90, seconds=1), source)
    elif kind == "garbage":
        source.write_bytes(b"definitely not a video " * 500)
    elif kind == "audio only":
        write_audio_only(source, "m4a")
    else:
        source.write_bytes(b"")
    return source


@pytest.mark.parametrize("kind", ["truncated", "garbage", "audio only", "empty"])
def test_unusable_input_is_unsupported_media(transcoder, tmp_path, kind):
    source = unusable_source(tmp_path, kind)
    with pytest.raises(UnsupportedMedia) as refused:
        transcoder.index(source)
    assert str(refused.value)
    output = process(source, tmp_path, ladder=LOWEST)
    assert output.outcome == f"failed: {refused.value}"
    assert output.video.status == "failed" and output.video.failure_reason == str(refused.value)
    assert not output.video.retryable
    assert encoder_threads() == []


def test_a_failure_while_encoding_stops_every_encoder_thread(tmp_path, monkeypatch):
    source = write_test_pattern(tmp_path / "source.mp4", width=640, height=360, seconds=3)
    calls = 0
    original = fmp4.annexb_to_avcc

    def failing(data: bytes) -> bytes:  # called in an encoder thread for each packet
        nonlocal calls
        calls += 1
        if calls == 20:
            raise OSError("disk full")
        return original(data)

    monkeypatch.setattr(fmp4, "annexb_to_avcc", failing)
    with pytest.raises((OSError, RuntimeError)):
        process(source, tmp_path, ladder=LADDER[:2])
    assert calls >= 20
    assert encoder_threads() == []


def test_index_opens_the_source_with_the_recorded_container_only(transcoder, tmp_path):
    matroska = write_test_pattern(tmp_path / "source.mkv", width=320, height=180, seconds=1, container="matroska")
    assert transcoder.index(matroska, "matroska").info.width == 320
    with pytest.raises(UnsupportedMedia):  # swapped after the upload was vetted as MP4
        transcoder.index(matroska, "mp4")


def test_index_runs_confined_so_a_source_too_costly_to_parse_fails_the_video(tmp_path):
    from adapters.outbound.media_sandbox import SandboxLimits

    source = write_test_pattern(tmp_path / "source.mp4", width=1920, height=1080, seconds=0.5)
    with pytest.raises(UnsupportedMedia):
        PyAVTranscoder(sandbox=SandboxLimits(timeout_s=60, memory_bytes=1024 * 1024)).index(source, "mp4")
