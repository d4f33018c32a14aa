"""HLS and DASH manifests for one set of CMAF segments, written from what the segment tasks measured.

Pure functions over `Track`s. Layout they assume: every playlist and the MPD live in the cmaf folder root
(e.g. cmaf/240p.m3u8, cmaf/audio.m3u8, cmaf/manifest.mpd), so segment and init URIs are used as given.
Bandwidths are measured, not nominal: peak = the highest bit rate of any one segment, average = total bits
over total time, both rounded up.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from fractions import Fraction

import msgspec

from domain.transcode_jobs import TranscodeJob

MPD_NAMESPACE = "urn:mpeg:dash:schema:mpd:2011"
DASH_PROFILE = "urn:mpeg:dash:profile:isoff-live:2011"
CHANNEL_CONFIGURATION_SCHEME = "urn:mpeg:dash:23003:3:audio_channel_configuration:2011"
AUDIO_GROUP = "audio"
_MICROS = 1_000_000


class Segment(msgspec.Struct, frozen=True):
    uri: str  # relative to the manifest, e.g. "240p/00003.m4s"
    duration: int  # track timescale ticks
    size: int  # bytes


class Track(msgspec.Struct, frozen=True):
    name: str  # "240p" or "audio"
    kind: str  # "video" | "audio"
    codecs: str  # e.g. "avc1.64001f" / "mp4a.40.2"
    timescale: int
    init_uri: str  # e.g. "240p/init.mp4"
    segments: list[Segment]
    start: int = 0  # decode time of the first segment, in ticks (tfdt)
    width: int = 0
    height: int = 0
    frame_rate: str = ""  # "num/den" or an integer, e.g. "30000/1001" or "30"
    sample_rate: int = 0
    channels: int = 0
    priming: int = 0  # ticks of encoder delay in the first segment, hidden by the init's edit list


# --- measured figures ----------------------------------------------------------------------------


def peak_bandwidth(track: Track) -> int:
    """Bits per second of the track's most demanding segment, rounded up."""
    return max(math.ceil(Fraction(8 * segment.size * track.timescale, segment.duration)) for segment in _segments(track))


def average_bandwidth(track: Track) -> int:
    """Total bits over total seconds, rounded up."""
    segments = _segments(track)
    bits = 8 * sum(segment.size for segment in segments)
    return math.ceil(Fraction(bits * track.timescale, sum(segment.duration for segment in segments)))


def _segments(track: Track) -> list[Segment]:
    """The track's segments, refused when a figure could not be computed from them."""
    if not track.segments:
        raise ValueError(f"track {track.name!r} has no segments")
    if track.timescale <= 0 or any(segment.duration <= 0 for segment in track.segments):
        raise ValueError(f"track {track.name!r} has a non-positive timescale or segment duration")
    return track.segments


def _frame_rate(track: Track) -> Fraction:
    if not track.frame_rate:
        raise ValueError(f"video track {track.name!r} has no frame rate")
    return Fraction(track.frame_rate)


def _hls_frame_rate(rate: Fraction) -> str:
    millis = _round_half_up(rate, 1000)
    return f"{millis // 1000}.{millis % 1000:03d}"


def _dash_frame_rate(rate: Fraction) -> str:
    return str(rate.numerator) if rate.denominator == 1 else f"{rate.numerator}/{rate.denominator}"


def _round_half_up(value: Fraction, scale: int) -> int:
    """value * scale rounded to the nearest integer, halves up (exact, unlike float formatting)."""
    return math.floor(value * scale + Fraction(1, 2))


# --- HLS -----------------------------------------------------------------------------------------


def media_playlist_name(track: Track) -> str:
    return f"{track.name}.m3u8"


def hls_media_playlist(track: Track, *, complete: bool) -> str:
    """A track's media playlist: EVENT while segments are still being added, VOD with ENDLIST once complete."""
    # The first segment presents its duration less the priming the edit list hides.
    shown = [segment.duration - (track.priming if n == 0 else 0) for n, segment in enumerate(_segments(track))]
    micros = [_round_half_up(Fraction(duration, track.timescale), _MICROS) for duration in shown]
    # RFC 8216: each EXTINF rounded to the nearest integer must not exceed the target, so round what is printed.
    target = max(1, (max(micros) + _MICROS // 2) // _MICROS)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'VOD' if complete else 'EVENT'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{track.init_uri}"',
    ]
    for segment, duration in zip(track.segments, micros, strict=True):
        lines += [f"#EXTINF:{duration // _MICROS}.{duration % _MICROS:06d},", segment.uri]
    if complete:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def hls_master(videos: Sequence[Track], audio: Track | None) -> str:
    """The master playlist: one variant per video track in the given order, all sharing the audio rendition."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    if audio is not None:
        lines.append(
            f'#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="{AUDIO_GROUP}",NAME="Default",DEFAULT=YES,AUTOSELECT=YES,'
            f'CHANNELS="{audio.channels}",URI="{media_playlist_name(audio)}"'
        )
    for video in videos:
        lines += [_stream_inf(video, audio), media_playlist_name(video)]
    return "\n".join(lines) + "\n"


def _stream_inf(video: Track, audio: Track | None) -> str:
    # A variant's bandwidth covers everything a player downloads to play it, so the audio is added in.
    peak, average, codecs = peak_bandwidth(video), average_bandwidth(video), video.codecs
    if audio is not None:
        peak, average, codecs = peak + peak_bandwidth(audio), average + average_bandwidth(audio), f"{codecs},{audio.codecs}"
    attributes = (
        f'BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},CODECS="{codecs}",RESOLUTION={video.width}x{video.height},'
        f"FRAME-RATE={_hls_frame_rate(_frame_rate(video))}"
    )
    return f"#EXT-X-STREAM-INF:{attributes}" + (f',AUDIO="{AUDIO_GROUP}"' if audio is not None else "")


# --- DASH ----------------------------------------------------------------------------------------


def dash_mpd(videos: Sequence[Track], audio: Track | None, *, duration_s: float, complete: bool) -> str:
    """A static (VOD) MPD with a SegmentTimeline per representation.

    `complete` changes nothing in the document: the video is VOD either way, and a player that loaded an
    incomplete MPD simply re-fetches it. It is kept for symmetry with `hls_media_playlist`.
    """
    mpd = ET.Element("MPD", {
        "xmlns": MPD_NAMESPACE,
        "profiles": DASH_PROFILE,
        "type": "static",
        "mediaPresentationDuration": f"PT{duration_s:.3f}S",
        "minBufferTime": "PT4S",
    })
    period = ET.SubElement(mpd, "Period", {"id": "0", "start": "PT0S"})
    if videos:
        period.append(_video_adaptation_set(videos))
    if audio is not None:
        period.append(_audio_adaptation_set(audio))
    ET.indent(mpd)
    return ET.tostring(mpd, encoding="unicode", xml_declaration=True) + "\n"


def _video_adaptation_set(videos: Sequence[Track]) -> ET.Element:
    # No bitstreamSwitching: each rendition has its own init segment.
    adaptation_set = ET.Element("AdaptationSet", {
        "contentType": "video",
        "mimeType": "video/mp4",
        "segmentAlignment": "true",
        "startWithSAP": "1",
        "maxWidth": str(max(video.width for video in videos)),
        "maxHeight": str(max(video.height for video in videos)),
        "maxFrameRate": _dash_frame_rate(max(_frame_rate(video) for video in videos)),
    })
    for video in videos:
        representation = ET.SubElement(adaptation_set, "Representation", {
            "id": video.name,
            "bandwidth": str(peak_bandwidth(video)),
            "codecs": video.codecs,
            "width": str(video.width),
            "height": str(video.height),
            "frameRate": _dash_frame_rate(_frame_rate(video)),
            "sar": "1:1",
        })
        representation.append(_segment_template(video))
    return adaptation_set


def _audio_adaptation_set(audio: Track) -> ET.Element:
    adaptation_set = ET.Element("AdaptationSet", {
        "contentType": "audio",
        "mimeType": "audio/mp4",
        "lang": "und",
        "segmentAlignment": "true",
        "startWithSAP": "1",
    })
    ET.SubElement(adaptation_set, "AudioChannelConfiguration", {
        "schemeIdUri": CHANNEL_CONFIGURATION_SCHEME,
        "value": str(audio.channels),
    })
    representation = ET.SubElement(adaptation_set, "Representation", {
        "id": audio.name,
        "bandwidth": str(peak_bandwidth(audio)),
        "codecs": audio.codecs,
        "audioSamplingRate": str(audio.sample_rate),
    })
    representation.append(_segment_template(audio))
    return adaptation_set


def _segment_template(track: Track) -> ET.Element:
    _check_numbered_uris(track)
    template = ET.Element("SegmentTemplate", {
        "timescale": str(track.timescale),
        "initialization": _escape_template(track.init_uri),
        "media": f"{_escape_template(track.name)}/$Number%05d$.m4s",
        "startNumber": "0",
    })
    timeline = ET.SubElement(template, "SegmentTimeline")
    for index, (duration, repeat) in enumerate(_runs(track.segments)):
        attributes = {"t": str(track.start)} if index == 0 else {}  # later runs follow on without a gap
        attributes["d"] = str(duration)
        if repeat:
            attributes["r"] = str(repeat)
        ET.SubElement(timeline, "S", attributes)
    return template


def _check_numbered_uris(track: Track) -> None:
    """DASH's template can only name segments "<name>/<5-digit number>.m4s" counting from 0; refuse others."""
    for index, segment in enumerate(_segments(track)):
        expected = f"{track.name}/{index:05d}.m4s"
        if segment.uri != expected:
            raise ValueError(f"segment {index} of track {track.name!r} is {segment.uri!r}, expected {expected!r}")


def _runs(segments: Sequence[Segment]) -> list[tuple[int, int]]:
    """(duration, repeat count) for each run of equal consecutive durations; r counts the repeats after the first."""
    runs: list[tuple[int, int]] = []
    for segment in segments:
        if runs and runs[-1][0] == segment.duration:
            runs[-1] = (segment.duration, runs[-1][1] + 1)
        else:
            runs.append((segment.duration, 0))
    return runs


def _escape_template(text: str) -> str:
    return text.replace("$", "$$")  # "$" opens an identifier in a SegmentTemplate


# --- a plan's manifests -------------------------------------------------------------------

CMAF = "cmaf"
HLS_MASTER = "master.m3u8"
DASH_MPD = "manifest.mpd"


def rung_master_name(rung: str) -> str:
    """An HLS master of one rung (plus the audio), so a player can be pinned to one quality."""
    return f"master_{rung}.m3u8"


def job_track(job: TranscodeJob, name: str) -> Track:
    """A rung's or the audio's track as measured by the tasks that made its segments."""
    info = job.track_info(name)
    segments = [
        Segment(uri=f"{name}/{segment['index']:05d}.m4s", duration=segment["duration"], size=segment["size"])
        for segment in job.track_segments(name)
    ]
    if name == "audio":
        return Track(name=name, kind="audio", codecs=info["codecs"], timescale=info["timescale"],
                     init_uri=f"{name}/init.mp4", segments=segments, sample_rate=info["sample_rate"],
                     channels=info["channels"], priming=info.get("priming", 0))
    rung = next(rung for rung in job.plan["rungs"] if rung["name"] == name)
    numerator, denominator = job.plan["frame_rate"]
    return Track(name=name, kind="video", codecs=info["codecs"], timescale=info["timescale"],
                 init_uri=f"{name}/init.mp4", segments=segments, width=rung["width"], height=rung["height"],
                 frame_rate=f"{numerator}/{denominator}")


def write_all(job: TranscodeJob, rungs: Sequence[str], *, finished: bool) -> dict[str, str]:
    """Every manifest of the plan listing these rungs, by name relative to the plan's folder.
    Media playlists are complete (VOD) since a rung is listed only once all its segments exist."""
    videos = [job_track(job, name) for name in rungs]
    audio = job_track(job, "audio") if job.has_audio else None
    files = {f"{CMAF}/{media_playlist_name(track)}": hls_media_playlist(track, complete=True) for track in videos}
    if audio is not None:
        files[f"{CMAF}/{media_playlist_name(audio)}"] = hls_media_playlist(audio, complete=True)
    for track in videos:
        files[f"{CMAF}/{rung_master_name(track.name)}"] = hls_master([track], audio)
    # Masters last: they name the playlists above.
    files[f"{CMAF}/{DASH_MPD}"] = dash_mpd(videos, audio, duration_s=job.plan["duration_s"], complete=finished)
    files[f"{CMAF}/{HLS_MASTER}"] = hls_master(videos, audio)
    return files
