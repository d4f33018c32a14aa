"""Renditions, manifests and thumbnails are typed Structs in a video's events; events recorded
before (plain dicts, the progressive MP4 under manifests["mp4"]) still load, as the same types."""

from __future__ import annotations

from eventsourcing.persistence import StoredEvent

from application.media_links import MediaLinks
from application.video_views import video_view
from domain.media import Manifests, Rendition, Thumbnails, progressive
from tests.fixtures.videos import add_video

V1_PROCESSED = (
    b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-01-02T03:04:05+00:00"},"duration_s":2.0,"width":640,'
    b'"height":360,"renditions":[{"name":"240p","width":426,"height":240,"bitrate":400000,"hls":"processed/V/p/'
    b'cmaf/240p.m3u8"},{"name":"360p","width":640,"height":360,"bitrate":800000}],"manifests":{"hls":"processed/V/'
    b'p/cmaf/master.m3u8","dash":"processed/V/p/cmaf/manifest.mpd","mp4":"processed/V/p/mp4/360p.mp4"},'
    b'"thumbnails":{"poster":"processed/V/p/thumbnails/poster.jpg"}}'
)


def test_a_processed_event_recorded_with_plain_dicts_loads_typed(videos):
    video = add_video(videos)
    video.start_processing()
    videos.save(video)
    state = V1_PROCESSED.replace(b"/V/", f"/{video.id}/".encode())
    stored = StoredEvent(originator_id=video.id, originator_version=3, topic="domain.videos:Video.Processed", state=state)
    videos.recorder.insert_events([stored])

    ready = videos.get_aggregate(video.id)
    folder = f"processed/{video.id}/p"
    assert ready.status == "ready" and ready.renditions == [
        Rendition(name="240p", width=426, height=240, bitrate=400_000, hls=f"{folder}/cmaf/240p.m3u8"),
        Rendition(name="360p", width=640, height=360, bitrate=800_000, mp4=f"{folder}/mp4/360p.mp4"),
    ]
    assert ready.manifests == Manifests(hls=f"{folder}/cmaf/master.m3u8", dash=f"{folder}/cmaf/manifest.mpd")
    assert ready.thumbnails == Thumbnails(poster=f"{folder}/thumbnails/poster.jpg")


def test_the_mp4_quality_is_the_rendition_it_was_recorded_with_whatever_its_file_is_called(videos):
    video = add_video(videos)
    video.start_processing()
    folder = f"processed/{video.id}/p"
    video.record_processed(
        duration_s=2.0, width=640, height=360, manifests=Manifests(hls=f"{folder}/m.m3u8", dash=f"{folder}/m.mpd"),
        renditions=[Rendition(name="360p", width=640, height=360, bitrate=800_000, mp4=f"{folder}/mp4/progressive.mp4")],
        thumbnails=Thumbnails(),
    )
    videos.save(video)
    ready = videos.get_aggregate(video.id)  # through the stored events
    assert progressive(ready.renditions) == video.renditions[0]
    links = MediaLinks(tokens=None, clock=None)  # a public video's links need neither
    shown = video_view(ready, links, created_at=ready.created_on, updated_at=ready.modified_on, progress=1.0)
    assert shown.streams.mp4 == {"360p": f"/media/{video.id}/p/mp4/progressive.mp4"}
