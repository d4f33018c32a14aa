"""Packaging: one set of CMAF (fMP4) segments described by both an HLS master playlist and
a DASH MPD, written by FFmpeg's dash muxer, plus a progressive faststart MP4 that reuses
the packets of one rung (a remux, not a second encode).

Rung threads and the audio path all write packets, but a PyAV output container is not
safe to mux into from several threads at once (it reuses one AVPacket and FFmpeg's
interleaving queue is unguarded), so every write goes through one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
from av.audio.frame import AudioFrame
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.stream import Stream

from domain.ladder import AUDIO_BITRATE

CMAF_DIR = "cmaf"
PROGRESSIVE_DIR = "mp4"
HLS_MASTER = "master.m3u8"
DASH_MANIFEST = "manifest.mpd"
AUDIO_RATE = 48_000
AUDIO_FRAME_SAMPLES = 1024  # what the AAC encoder takes per frame


def dash_options(segment_seconds: int, has_audio: bool) -> dict[str, str]:
    adaptation_sets = "id=0,streams=v" + (" id=1,streams=a" if has_audio else "")
    return {
        "seg_duration": str(segment_seconds),
        "use_template": "1",
        "use_timeline": "1",
        "single_file": "0",
        "hls_playlist": "1",
        "hls_master_name": HLS_MASTER,
        "init_seg_name": "init-$RepresentationID$.m4s",
        "media_seg_name": "segment-$RepresentationID$-$Number%05d$.m4s",
        # Every video rung in one adaptation set, so DASH players can switch between them.
        "adaptation_sets": adaptation_sets,
    }


def open_dash(output_dir: Path, segment_seconds: int, has_audio: bool) -> OutputContainer:
    folder = output_dir / CMAF_DIR
    folder.mkdir(parents=True, exist_ok=True)
    return av.open(
        str(folder / DASH_MANIFEST), mode="w", format="dash",
        options=dash_options(segment_seconds, has_audio),
    )


def open_progressive(path: Path) -> OutputContainer:
    path.parent.mkdir(parents=True, exist_ok=True)
    # faststart moves the index before the media, so playback starts before the download ends.
    return av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})


def add_aac_stream(container: OutputContainer) -> AudioStream:
    stream = container.add_stream("aac", rate=AUDIO_RATE, layout="stereo")
    stream.bit_rate = AUDIO_BITRATE
    return stream


class Muxer:
    """Serialises writes into the CMAF output and, for the streams it mirrors, into the
    progressive MP4 as well."""

    def __init__(self, dash: OutputContainer, progressive: OutputContainer) -> None:
        self.dash = dash
        self.progressive = progressive
        self._mirrors: dict[int, Stream] = {}  # dash stream index -> progressive stream
        self._lock = threading.Lock()

    def mirror(self, stream: Stream) -> None:
        """Also write this stream's packets into the progressive MP4. Call after the dash
        header is written, when the encoder's parameters (extradata) are known."""
        self._mirrors[stream.index] = self.progressive.add_stream_from_template(stream)

    def write(self, packets: Iterable[av.Packet]) -> None:
        with self._lock:
            for packet in packets:
                mirror = self._mirrors.get(packet.stream.index)
                self.dash.mux(packet)  # muxes a new reference; the packet stays usable
                if mirror is not None:
                    packet.stream = mirror
                    self.progressive.mux(packet)


class AudioTrack:
    """Resamples the source audio to 48 kHz stereo and encodes AAC, with timestamps that
    start where the video starts."""

    def __init__(self, stream: AudioStream, muxer: Muxer) -> None:
        self.stream = stream
        self._muxer = muxer
        self._resampler = AudioResampler(
            format="fltp", layout="stereo", rate=AUDIO_RATE, frame_size=AUDIO_FRAME_SAMPLES
        )
        self._next_sample: int | None = None

    def add(self, frame: AudioFrame, origin: Fraction) -> None:
        """Encode a decoded source frame; frames wholly before the first picture are dropped."""
        if frame.pts is None or frame.time_base is None or frame.sample_rate <= 0:
            return
        start = frame.pts * frame.time_base - origin
        if start + Fraction(frame.samples, frame.sample_rate) <= 0:
            return
        if self._next_sample is None:
            self._next_sample = max(0, round(start * AUDIO_RATE))
        frame.pts = None  # counted from here on: source audio timestamps are often jittery
        self._encode(self._resampler.resample(frame))

    def finish(self) -> None:
        if self._next_sample is not None:
            self._encode(self._resampler.resample(None))
        self._muxer.write(self.stream.encode(None))

    def _encode(self, frames: list[AudioFrame]) -> None:
        assert self._next_sample is not None
        for frame in frames:
            frame.pts, frame.time_base = self._next_sample, Fraction(1, AUDIO_RATE)
            self._next_sample += frame.samples
            self._muxer.write(self.stream.encode(frame))


def written_files(output_dir: Path, folder: str) -> list[str]:
    """Every file under output_dir/folder, relative to output_dir, in a stable order."""
    root = output_dir / folder
    return sorted(path.relative_to(output_dir).as_posix() for path in root.rglob("*") if path.is_file())


def progressive_name(rung_name: str) -> str:
    return f"{PROGRESSIVE_DIR}/{rung_name}.mp4"


def rung_master_name(rung_name: str) -> str:
    return f"master_{rung_name}.m3u8"


def write_rung_masters(output_dir: Path, rung_names: Sequence[str]) -> None:
    """One HLS master per rung (its variant plus the audio rendition), so a player can be
    pinned to one quality; the full master keeps every variant. The dash muxer numbers the
    media playlists in stream order: rungs first, audio last."""
    master = (output_dir / CMAF_DIR / HLS_MASTER).read_text()
    header, variants = [], []
    lines = master.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("#EXT-X-STREAM-INF"):
            variants.append((line, lines[index + 1]))
            index += 2
            continue
        if line:
            header.append(line)
        index += 1
    for name, (info, uri) in zip(rung_names, variants, strict=True):
        (output_dir / CMAF_DIR / rung_master_name(name)).write_text("\n".join([*header, info, uri, ""]))
