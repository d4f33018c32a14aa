"""HLS playlists and the DASH MPD, checked field by field against figures worked out by hand."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import msgspec
import pytest

from application.manifests import (
    Segment,
    Track,
    average_bandwidth,
    dash_mpd,
    hls_master,
    hls_media_playlist,
    media_playlist_name,
    peak_bandwidth,
)

NS = {"mpd": "urn:mpeg:dash:schema:mpd:2011"}


def segments(name: str, durations_and_sizes: list[tuple[int, int]]) -> list[Segment]:
    return [Segment(f"{name}/{i:05d}.m4s", duration, size) for i, (duration, size) in enumerate(durations_and_sizes)]


# 4 s, 4 s, 1.5 s at 15360 ticks/s. Peaks 200000, 300002 (1200008 bits / 4 s), 160000 bits/s;
# average 2240008 bits / 9.5 s = 235790.3 -> 235791.
V240 = Track(
    name="240p", kind="video", codecs="avc1.64000d", timescale=15_360, init_uri="240p/init.mp4",
    segments=segments("240p", [(61_440, 100_000), (61_440, 150_001), (23_040, 30_000)]),
    width=320, height=240, frame_rate="30",
)
# 29.97 fps: 4.004 s segments (120 frames) and a 2.002 s tail at 30000 ticks/s.
# Peak 510000 * 8 / 4.004 = 1018981.02 -> 1018982; average 1700000 * 8 / 14.014 = 970458.1 -> 970459.
V720 = Track(
    name="720p", kind="video", codecs="avc1.64001f", timescale=30_000, init_uri="720p/init.mp4",
    segments=segments("720p", [(120_120, 500_000), (120_120, 510_000), (120_120, 490_000), (60_060, 200_000)]),
    width=1280, height=720, frame_rate="30000/1001",
)
# 188 AAC frames (4.010667 s) twice, then 70 (1.493333 s). Peak 64500 * 8 / 4.010667 = 128656.6 -> 128657;
# average 152500 * 8 / 9.514667 = 128223.4 -> 128224.
AUDIO = Track(
    name="audio", kind="audio", codecs="mp4a.40.2", timescale=48_000, init_uri="audio/init.mp4",
    segments=segments("audio", [(192_512, 64_000), (192_512, 64_500), (71_680, 24_000)]),
    sample_rate=48_000, channels=2,
)


def tags(playlist: str) -> dict[str, str]:
    """Each #EXT tag's value (the text after the colon, "" for bare tags); the last wins."""
    return {tag: value for tag, _, value in (line.partition(":") for line in playlist.splitlines() if line.startswith("#EXT"))}


def attributes(value: str) -> dict[str, str]:
    """An attribute list, splitting on commas outside quotes and unquoting."""
    pairs, current, quoted = [], "", False
    for char in value + ",":
        if char == "," and not quoted:
            pairs.append(current)
            current = ""
            continue
        quoted ^= char == '"'
        current += char
    return {key: item.strip('"') for key, _, item in (pair.partition("=") for pair in pairs)}


# --- measured figures --------------------------------------------------------------------------


def test_bandwidths_are_measured_and_rounded_up():
    assert (peak_bandwidth(V240), average_bandwidth(V240)) == (300_002, 235_791)
    assert (peak_bandwidth(V720), average_bandwidth(V720)) == (1_018_982, 970_459)
    assert (peak_bandwidth(AUDIO), average_bandwidth(AUDIO)) == (128_657, 128_224)


def test_tracks_without_segments_or_with_zero_durations_are_refused():
    with pytest.raises(ValueError):
        peak_bandwidth(Track("v", "video", "avc1.64000d", 15_360, "v/init.mp4", []))
    with pytest.raises(ValueError):
        hls_media_playlist(Track("v", "video", "avc1.64000d", 15_360, "v/init.mp4", [Segment("v/00000.m4s", 0, 1)]),
                           complete=True)


# --- HLS media playlists -----------------------------------------------------------------------


def test_complete_media_playlist():
    playlist = hls_media_playlist(V240, complete=True)
    lines = playlist.splitlines()

    assert lines[:7] == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:4",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        '#EXT-X-MAP:URI="240p/init.mp4"',
    ]
    assert lines[7:] == [
        "#EXTINF:4.000000,", "240p/00000.m4s",
        "#EXTINF:4.000000,", "240p/00001.m4s",
        "#EXTINF:1.500000,", "240p/00002.m4s",
        "#EXT-X-ENDLIST",
    ]
    assert playlist.endswith("\n")


def test_incomplete_media_playlist_is_an_event_without_endlist():
    playlist = hls_media_playlist(V240, complete=False)
    assert tags(playlist)["#EXT-X-PLAYLIST-TYPE"] == "EVENT"
    assert "#EXT-X-ENDLIST" not in playlist


def test_media_playlist_of_29_97_fps_track():
    playlist = hls_media_playlist(V720, complete=True)
    extinfs = [line for line in playlist.splitlines() if line.startswith("#EXTINF")]
    assert extinfs == ["#EXTINF:4.004000,"] * 3 + ["#EXTINF:2.002000,"]
    assert tags(playlist)["#EXT-X-TARGETDURATION"] == "4"


@pytest.mark.parametrize(("ticks", "extinf", "target"), [
    (45_000_000, "4.500000", "5"),  # exactly half: rounds up
    (44_999_996, "4.500000", "5"),  # printed as 4.500000, which a player rounds to 5
    (44_999_940, "4.499994", "4"),
    (3_000_000, "0.300000", "1"),  # never a target of 0
])
def test_target_duration_rounds_the_printed_extinf_half_up(ticks, extinf, target):
    track = Track("v", "video", "avc1.64000d", 10_000_000, "v/init.mp4", [Segment("v/00000.m4s", ticks, 1)])
    playlist = hls_media_playlist(track, complete=True)
    assert (tags(playlist)["#EXTINF"], tags(playlist)["#EXT-X-TARGETDURATION"]) == (f"{extinf},", target)


def test_media_playlist_name():
    assert (media_playlist_name(V240), media_playlist_name(AUDIO)) == ("240p.m3u8", "audio.m3u8")


# --- HLS master --------------------------------------------------------------------------------


def test_master_with_audio():
    lines = hls_master([V240, V720], AUDIO).splitlines()

    assert lines[:3] == ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    media = attributes(lines[3].removeprefix("#EXT-X-MEDIA:"))
    assert media == {
        "TYPE": "AUDIO", "GROUP-ID": "audio", "NAME": "Default", "DEFAULT": "YES", "AUTOSELECT": "YES",
        "CHANNELS": "2", "URI": "audio.m3u8",
    }
    assert lines[5::2] == ["240p.m3u8", "720p.m3u8"]  # given order, each right after its STREAM-INF
    low, high = (attributes(line.removeprefix("#EXT-X-STREAM-INF:")) for line in lines[4::2])
    assert low == {
        "BANDWIDTH": str(300_002 + 128_657), "AVERAGE-BANDWIDTH": str(235_791 + 128_224),
        "CODECS": "avc1.64000d,mp4a.40.2", "RESOLUTION": "320x240", "FRAME-RATE": "30.000", "AUDIO": "audio",
    }
    assert high == {
        "BANDWIDTH": str(1_018_982 + 128_657), "AVERAGE-BANDWIDTH": str(970_459 + 128_224),
        "CODECS": "avc1.64001f,mp4a.40.2", "RESOLUTION": "1280x720", "FRAME-RATE": "29.970", "AUDIO": "audio",
    }


def test_video_only_master_has_no_audio_group():
    master = hls_master([V240], None)
    assert "#EXT-X-MEDIA:" not in master
    stream_inf = attributes(tags(master)["#EXT-X-STREAM-INF"])
    assert "AUDIO" not in stream_inf
    assert (stream_inf["BANDWIDTH"], stream_inf["AVERAGE-BANDWIDTH"], stream_inf["CODECS"]) == ("300002", "235791", "avc1.64000d")


def test_master_refuses_a_video_without_frame_rate():
    with pytest.raises(ValueError):
        hls_master([Track("v", "video", "avc1.64000d", 15_360, "v/init.mp4", V240.segments, width=320, height=240)], None)


# --- DASH --------------------------------------------------------------------------------------


def parse(mpd: str) -> ET.Element:
    assert mpd.startswith("<?xml")
    return ET.fromstring(mpd)


def test_mpd_top_level():
    root = parse(dash_mpd([V240, V720], AUDIO, duration_s=9.514666, complete=True))

    assert root.tag == "{urn:mpeg:dash:schema:mpd:2011}MPD"
    assert root.attrib == {
        "profiles": "urn:mpeg:dash:profile:isoff-live:2011", "type": "static",
        "mediaPresentationDuration": "PT9.515S", "minBufferTime": "PT4S",
    }
    periods = root.findall("mpd:Period", NS)
    assert [period.attrib for period in periods] == [{"id": "0", "start": "PT0S"}]
    assert [a.get("contentType") for a in periods[0].findall("mpd:AdaptationSet", NS)] == ["video", "audio"]


def test_mpd_video_adaptation_set():
    root = parse(dash_mpd([V240, V720], AUDIO, duration_s=9.5, complete=True))
    video = root.find("mpd:Period/mpd:AdaptationSet[@contentType='video']", NS)

    assert video.attrib == {
        "contentType": "video", "mimeType": "video/mp4", "segmentAlignment": "true", "startWithSAP": "1",
        "maxWidth": "1280", "maxHeight": "720", "maxFrameRate": "30",
    }
    assert "bitstreamSwitching" not in video.attrib  # each rendition has its own init segment
    low, high = video.findall("mpd:Representation", NS)
    assert low.attrib == {
        "id": "240p", "bandwidth": "300002", "codecs": "avc1.64000d", "width": "320", "height": "240",
        "frameRate": "30", "sar": "1:1",
    }
    assert (high.get("bandwidth"), high.get("frameRate"), high.get("codecs")) == ("1018982", "30000/1001", "avc1.64001f")
    assert low.find("mpd:SegmentTemplate", NS).attrib == {
        "timescale": "15360", "initialization": "240p/init.mp4", "media": "240p/$Number%05d$.m4s", "startNumber": "0",
    }


def timeline(root: ET.Element, representation_id: str) -> list[dict[str, str]]:
    representation = f"mpd:Period/mpd:AdaptationSet/mpd:Representation[@id='{representation_id}']"
    path = f"{representation}/mpd:SegmentTemplate/mpd:SegmentTimeline/mpd:S"
    return [s.attrib for s in root.findall(path, NS)]


def test_mpd_segment_timeline_is_run_length_encoded():
    root = parse(dash_mpd([V240, V720], AUDIO, duration_s=9.5, complete=True))
    assert timeline(root, "240p") == [{"t": "0", "d": "61440", "r": "1"}, {"d": "23040"}]
    assert timeline(root, "720p") == [{"t": "0", "d": "120120", "r": "2"}, {"d": "60060"}]


def test_mpd_segment_timeline_starts_at_the_first_tfdt_and_keeps_single_runs_bare():
    track = Track("360p", "video", "avc1.64001e", 90_000, "360p/init.mp4",
                  segments("360p", [(360_000, 1), (300_000, 1), (360_000, 1), (360_000, 1)]),
                  start=1_800, width=640, height=360, frame_rate="25")
    root = parse(dash_mpd([track], None, duration_s=15.0, complete=False))
    assert timeline(root, "360p") == [{"t": "1800", "d": "360000"}, {"d": "300000"}, {"d": "360000", "r": "1"}]


def test_mpd_audio_adaptation_set():
    root = parse(dash_mpd([V240], AUDIO, duration_s=9.5, complete=True))
    audio = root.find("mpd:Period/mpd:AdaptationSet[@contentType='audio']", NS)

    assert audio.attrib == {
        "contentType": "audio", "mimeType": "audio/mp4", "lang": "und", "segmentAlignment": "true", "startWithSAP": "1",
    }
    assert audio.find("mpd:AudioChannelConfiguration", NS).attrib == {
        "schemeIdUri": "urn:mpeg:dash:23003:3:audio_channel_configuration:2011", "value": "2",
    }
    representation = audio.find("mpd:Representation", NS)
    assert representation.attrib == {"id": "audio", "bandwidth": "128657", "codecs": "mp4a.40.2", "audioSamplingRate": "48000"}
    assert timeline(root, "audio") == [{"t": "0", "d": "192512", "r": "1"}, {"d": "71680"}]


def test_mpd_without_audio_has_only_video():
    root = parse(dash_mpd([V240], None, duration_s=9.5, complete=True))
    assert [a.get("contentType") for a in root.findall("mpd:Period/mpd:AdaptationSet", NS)] == ["video"]


def test_mpd_is_the_same_whether_complete_or_not():
    assert dash_mpd([V240], AUDIO, duration_s=9.5, complete=False) == dash_mpd([V240], AUDIO, duration_s=9.5, complete=True)


@pytest.mark.parametrize("uris", [
    ["240p/0.m4s", "240p/1.m4s", "240p/2.m4s"],  # not zero-padded
    ["240p/00001.m4s", "240p/00002.m4s", "240p/00003.m4s"],  # not counting from 0
    ["other/00000.m4s", "other/00001.m4s", "other/00002.m4s"],  # not under the track's name
])
def test_mpd_refuses_uris_the_template_cannot_express(uris):
    track = msgspec.structs.replace(V240, segments=[Segment(uri, 61_440, 1) for uri in uris])
    with pytest.raises(ValueError):
        dash_mpd([track], None, duration_s=12.0, complete=True)



def test_the_first_audio_segment_lasts_its_samples_less_the_hidden_priming():
    audio = Track(name="audio", kind="audio", codecs="mp4a.40.2", timescale=48000, init_uri="audio/init.mp4",
                  segments=[Segment("audio/00000.m4s", 193536, 1000), Segment("audio/00001.m4s", 192512, 1000)],
                  sample_rate=48000, channels=2, priming=1024)
    durations = [line for line in hls_media_playlist(audio, complete=True).splitlines() if line.startswith("#EXTINF")]
    assert durations == ["#EXTINF:4.010667,", "#EXTINF:4.010667,"]
