"""PyAVMediaInspector against real media written by PyAV: accepted containers and refusals."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import av
import pytest

from adapters.outbound.pyav_media_inspector import (
    MATROSKA,
    MP4,
    MPEG_TS,
    PyAVMediaInspector,
    sniff_container,
)
from application.errors import UnsupportedMedia
from application.ports import MediaInfo
from tests import media_factory as media


def inspect_path(path: Path, inspector: PyAVMediaInspector | None = None) -> MediaInfo:
    """Inspect the file through a seekable file object, as the upload path does."""
    with path.open("rb") as source:
        return (inspector or PyAVMediaInspector()).inspect(source)


def require_encoder(codec: str) -> None:
    """The locked PyAV build has every encoder these tests use; a build without one must fail
    loudly rather than quietly test less."""
    try:
        av.codec.Codec(codec, "w")
    except (av.error.FFmpegError, ValueError):
        pytest.fail(f"no {codec} encoder in this PyAV build")


MJPEG = {"codec": "mjpeg", "pix_fmt": "yuvj420p"}  # the JPEG encoder wants full-range YUV
M2TS = {"mpegts_m2ts_mode": "1"}  # 192-byte packets, as Blu-ray and AVCHD cameras write

# (test id, write_clip arguments, file suffix, expected container, expected codec)
ACCEPTED = [
    ("mp4-h264", {"container": "mp4"}, ".mp4", "mp4", "h264"),
    ("mp4-hevc", {"container": "mp4", "codec": "libx265"}, ".mp4", "mp4", "hevc"),
    ("mp4-av1", {"container": "mp4", "codec": "libsvtav1"}, ".mp4", "mp4", "av1"),
    ("mov-h264", {"container": "mov"}, ".mov", "mp4", "h264"),
    ("3gp-h264", {"container": "3gp"}, ".3gp", "mp4", "h264"),
    ("mkv-h264", {"container": "matroska"}, ".mkv", "matroska", "h264"),
    ("webm-vp8", {"container": "webm", "codec": "libvpx"}, ".webm", "matroska", "vp8"),
    ("webm-vp9", {"container": "webm", "codec": "libvpx-vp9"}, ".webm", "matroska", "vp9"),
    ("avi-mpeg4", {"container": "avi", "codec": "mpeg4"}, ".avi", "avi", "mpeg4"),
    ("avi-mjpeg", {"container": "avi", **MJPEG}, ".avi", "avi", "mjpeg"),
    ("mpegts-h264", {"container": "mpegts"}, ".ts", "mpegts", "h264"),
    ("m2ts-h264", {"container": "mpegts", "muxer_options": M2TS}, ".m2ts", "mpegts", "h264"),
    ("mpegps-mpeg2", {"container": "mpeg", "codec": "mpeg2video"}, ".mpg", "mpegps", "mpeg2video"),
    ("flv-h264", {"container": "flv"}, ".flv", "flv", "h264"),
    ("ogg-vp8", {"container": "ogg", "codec": "libvpx"}, ".ogv", "ogg", "vp8"),
]


@pytest.mark.parametrize(
    ("clip", "suffix", "container", "codec"),
    [pytest.param(*case[1:], id=case[0]) for case in ACCEPTED],
)
def test_accepts_video_containers(
    tmp_path: Path, clip: dict, suffix: str, container: str, codec: str
) -> None:
    require_encoder(clip.get("codec", "libx264"))
    path = media.write_clip(tmp_path / f"clip{suffix}", width=96, height=64, **clip)

    info = inspect_path(path)

    assert (info.container, info.video_codec) == (container, codec)
    assert (info.width, info.height) == (96, 64)
    assert info.has_audio
    assert info.duration_s == pytest.approx(1.0, abs=0.15)


def test_reports_a_video_without_audio(tmp_path: Path) -> None:
    path = media.write_clip(tmp_path / "silent.mp4", width=320, height=240, audio=False)

    info = inspect_path(path)


    assert (info.width, info.height, info.has_audio) == (320, 240, False)


def test_accepts_mp4_whose_moov_atom_is_at_the_end(tmp_path: Path) -> None:
    path = media.write_clip(tmp_path / "moov-last.mp4")
    data = path.read_bytes()
    assert data.find(b"moov") > data.find(b"mdat")  # PyAV's default layout, not faststart

    assert inspect_path(path).container == "mp4"


def test_accepts_faststart_mp4(tmp_path: Path) -> None:
    path = media.write_clip(tmp_path / "faststart.mp4", muxer_options={"movflags": "faststart"})
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")

    assert inspect_path(path).container == "mp4"


def test_accepts_a_two_frame_clip(tmp_path: Path) -> None:
    path = media.write_clip(tmp_path / "two.mp4", seconds=2 / 24, audio=False)

    assert inspect_path(path).video_codec == "h264"


def _text(content: str) -> Callable[[Path], Path]:
    """A writer of a text file."""

    def write(path: Path) -> Path:
        path.write_text(content)
        return path

    return write


def _raw(data: bytes) -> Callable[[Path], Path]:
    """A writer of exactly these bytes."""

    def write(path: Path) -> Path:
        path.write_bytes(data)
        return path

    return write


def _truncated(clip: dict, keep_fraction: float) -> Callable[[Path], Path]:
    """A writer of the first keep_fraction of a clip."""

    def write(path: Path) -> Path:
        whole = media.write_clip(path.with_name("whole" + path.suffix), **clip)
        return media.write_truncated_copy(whole, path, keep_fraction)

    return write


SRT = "1\n00:00:00,000 --> 00:00:01,000\nHello\n\n2\n00:00:01,000 --> 00:00:02,000\nWorld\n"

NOT_A_CONTAINER = "not in a supported video container"
DAMAGED = "damaged or incomplete"
AUDIO_ONLY = "only audio"
COVER_ART = "cover art"
SINGLE_PICTURE = "single picture"

# (test id, writer, a fragment of the reason given)
REFUSED: list[tuple[str, Callable[[Path], Path], str]] = [
    ("empty", _raw(b""), NOT_A_CONTAINER),
    ("ten-bytes", _raw(b"0123456789"), NOT_A_CONTAINER),
    ("random-bytes", _raw(random.Random(7).randbytes(50_000)), NOT_A_CONTAINER),
    ("text-renamed-mp4", _text("Not a video, just text renamed to .mp4\n" * 40), NOT_A_CONTAINER),
    ("srt-subtitles", _text(SRT), NOT_A_CONTAINER),
    ("png", media.write_png, NOT_A_CONTAINER),
    ("jpeg", media.write_jpeg, NOT_A_CONTAINER),
    ("animated-gif", media.write_animated_gif, NOT_A_CONTAINER),
    ("wav", lambda path: media.write_audio_only(path, "wav"), NOT_A_CONTAINER),
    ("mp3", lambda path: media.write_audio_only(path, "mp3"), NOT_A_CONTAINER),
    ("flac", lambda path: media.write_audio_only(path, "flac"), NOT_A_CONTAINER),
    ("mp3-with-cover-art", lambda path: media.write_audio_with_cover(path, "mp3"), NOT_A_CONTAINER),
    # Passes the magic-number check, then FFmpeg cannot parse it.
    ("text-with-free-at-offset-4", _text("Get free stuff now! " * 100), DAMAGED),
    ("transport-sync-bytes-only", _raw(b"G" * 5000), DAMAGED),
    ("mkv-truncated-header", _truncated({"container": "matroska"}, 0.004), DAMAGED),
    ("mp4-truncated-before-moov", _truncated({"container": "mp4"}, 0.5), DAMAGED),
    # An accepted container without a real video stream.
    ("m4a", lambda path: media.write_audio_only(path, "m4a"), AUDIO_ONLY),
    ("mp4-audio-only", lambda path: media.write_audio_only(path, "mp4"), AUDIO_ONLY),
    ("ogg-audio-only", lambda path: media.write_audio_only(path, "ogg"), AUDIO_ONLY),
    ("mp4-audio-with-cover-art", lambda path: media.write_audio_with_cover(path, "mp4"), COVER_ART),
    (
        "avi-single-mjpeg-frame",
        lambda path: media.write_clip(path, container="avi", seconds=1 / 24, **MJPEG),
        SINGLE_PICTURE,
    ),
    (
        "mp4-single-h264-frame",
        lambda path: media.write_clip(path, seconds=1 / 24, audio=False),
        SINGLE_PICTURE,
    ),
]


@pytest.mark.parametrize(
    ("write", "reason"), [pytest.param(write, reason, id=name) for name, write, reason in REFUSED]
)
def test_refuses_what_is_not_an_accepted_video(
    tmp_path: Path, write: Callable[[Path], Path], reason: str
) -> None:
    path = write(tmp_path / "upload.mp4")

    with pytest.raises(UnsupportedMedia, match=reason) as refusal:
        inspect_path(path)

    assert "Errno" not in str(refusal.value)  # a sentence for a person, not an FFmpeg error code


def test_gives_up_after_the_packet_budget(tmp_path: Path) -> None:
    path = media.write_clip(tmp_path / "clip.mp4")

    with pytest.raises(UnsupportedMedia):
        inspect_path(path, PyAVMediaInspector(max_packets=1))


def test_lets_storage_failures_through(tmp_path: Path) -> None:
    data = media.write_clip(tmp_path / "clip.mp4").read_bytes()

    class StorageGoesDownAfterTheHead(io.BytesIO):
        reads = 0

        def read(self, size: int | None = -1) -> bytes:
            self.reads += 1
            if self.reads > 1:
                raise OSError("storage unreachable")
            return super().read(size)

    # A storage outage is not the uploader's fault: it must not become a 415.
    with pytest.raises(OSError, match="storage unreachable"):
        PyAVMediaInspector().inspect(StorageGoesDownAfterTheHead(data))


@pytest.mark.parametrize(
    ("head", "family"),
    [
        pytest.param(b"\x00\x00\x00\x08wide\x00\x00\x00\x10mdat", MP4, id="quicktime-wide"),
        pytest.param(b"\x00\x00\x00\x10free\x00" * 4, MP4, id="quicktime-free"),
        pytest.param(b"\x00\x00\x00\x18ftypqt  \x00\x00\x02\x00", MP4, id="quicktime-ftyp"),
        pytest.param(b"\x1a\x45\xdf\xa3\x9f\x42\x86\x81\x01", MATROSKA, id="ebml"),
        pytest.param((b"G" + bytes(187)) * 3, MPEG_TS, id="ts-three-packets"),
        pytest.param(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00", None, id="heif-image"),
        pytest.param(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00", None, id="avif-image"),
        pytest.param((b"G" + bytes(187)) * 2, None, id="ts-too-short"),
        pytest.param(b"RIFF\x24\x00\x00\x00WAVEfmt ", None, id="wav"),
    ],
)
def test_sniffs_the_container_from_its_first_bytes(head: bytes, family: object) -> None:
    assert sniff_container(head) == family
