"""The playback cache: Redis and its twin, read-through and invalidation, and a stream
endpoint that needs neither the event store nor the read model once the cache is warm."""

from __future__ import annotations

import time
import uuid

import pytest
from eventsourcing.persistence import Tracking

from adapters.outbound.cache import InMemoryCache, RedisCache
from adapters.outbound.in_memory_catalog import InMemoryVideoCatalog
from adapters.outbound.redis_client import connect
from adapters.outbound.sql_catalog import SqlCatalog
from application.errors import NotFound
from application.projections import CatalogProjection
from entrypoints.projector import build_catalog
from entrypoints.settings import Settings
from tests.fixtures.videos import add_video


@pytest.fixture(params=["memory", "redis"])
def cache(request):
    if request.param == "memory":
        return InMemoryCache()
    return RedisCache(request.getfixturevalue("redis_client"), request.getfixturevalue("redis_prefix"))


def test_values_expire_and_can_be_deleted(cache):
    cache.set("a", b"1", ttl_s=1)
    cache.set("b", b"2", ttl_s=60)
    assert cache.get("a") == b"1"
    cache.delete("b", "never-set")
    assert cache.get("b") is None
    time.sleep(1.1)
    assert cache.get("a") is None


def test_redis_away_means_misses_not_errors():
    away = RedisCache(connect("redis://127.0.0.1:1/0"), "x:")
    started = time.monotonic()
    away.set("k", b"v", 10)
    away.delete("k")
    assert away.get("k") is None
    assert time.monotonic() - started < 1.0


def test_info_is_read_through_and_invalidated(videos, cache):
    from application.playback import PlaybackCache

    playback = PlaybackCache(videos, cache)
    video = add_video(videos)
    assert playback.info(video.id).status == "uploaded"
    video.start_processing()
    videos.save(video)
    assert playback.info(video.id).status == "uploaded"  # cached
    playback.invalidate(video.id)
    assert playback.info(video.id).status == "processing"
    with pytest.raises(NotFound):
        playback.info(uuid.uuid4())


def test_the_projection_tells_when_a_video_changed(videos):
    changed = []
    projection = CatalogProjection(InMemoryVideoCatalog(), changed.append)
    video = add_video(videos)
    for position, event in enumerate(videos.events.get(video.id), start=1):
        projection.process_event(event, Tracking("videos", position))
    assert changed == [video.id]


class SwitchableCatalog:
    """The real catalog, whose `get` can be made to fail: passed through bootstrap(catalog=...)."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self.catalog = catalog
        self.reachable = True

    def get(self, video_id):
        if not self.reachable:
            raise AssertionError("the read model was read")
        return self.catalog.get(video_id)

    def __getattr__(self, name: str):
        return getattr(self.catalog, name)


@pytest.fixture
def adapters(tmp_path):
    """Every app in this module reads a catalog the test can switch off."""
    catalog = build_catalog(Settings(data_dir=tmp_path / "var"))
    yield {"catalog": SwitchableCatalog(catalog)}
    catalog.close()


def test_a_warm_stream_request_touches_no_database(client, vodhub, adapters, make_ready, uploader, monkeypatch):
    video = make_ready(uploader, visibility="unlisted")
    url = f"/api/videos/stream/{video['id']}"
    assert client.get(url, headers=uploader).status_code == 302
    location = client.get(url, headers=uploader).headers["location"]
    assert client.get(location).status_code == 200  # warms the manifest too

    def no_database(*_, **__):
        raise AssertionError("the event store was read")

    monkeypatch.setattr(vodhub.videos.repository, "get", no_database)  # the event store is inside Videos
    adapters["catalog"].reachable = False
    assert client.get(url, headers=uploader).status_code == 302
    manifest = client.get(location)
    assert manifest.status_code == 200 and manifest.text.startswith("#EXTM3U")


def test_editing_a_video_drops_its_cached_info(client, make_ready, uploader):
    video = make_ready(uploader)
    assert client.get(f"/api/videos/stream/{video['id']}", headers=uploader).headers["location"].startswith(
        f"/media/{video['id']}/")
    client.patch(f"/api/videos/{video['id']}", headers=uploader, json={"visibility": "private"})
    assert client.get(f"/api/videos/stream/{video['id']}", headers=uploader).headers["location"].startswith("/media/t/")
    assert client.get(f"/media/{video['id']}/mp4/240p.mp4").status_code == 404
