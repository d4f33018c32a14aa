"""Views on in-memory adapters: the beacon counts once per window and never waits for the
broker; the buffer keeps views while publishing fails; co-views count viewers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import anyio
import pytest

from adapters.outbound.cache import InMemoryCache
from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.metrics import InMemoryViewMetrics
from adapters.outbound.view_dedup import InMemoryViewDedup
from application.accounts import Principal
from application.analytics import ViewBeacon, ViewBuffer, plan_views
from application.errors import NotFound
from application.integration_events import VideoViewed, decode
from application.playback import PlaybackCache
from tests.fixtures.videos import add_video


class FlakyPublisher:
    """Fails the first `failures` publishes, then keeps what it is given."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.published: list = []

    async def publish(self, messages) -> None:
        if self.failures:
            self.failures -= 1
            raise ConnectionError("broker away")
        self.published.extend(messages)

    async def ping(self) -> None:
        pass


def principal(user_id=None, roles=("user",)) -> Principal:
    return Principal(user_id=user_id or uuid.uuid4(), username="u", roles=roles, token_id="t", session_id="s",
                     expires_at=datetime.now(UTC) + timedelta(minutes=5))


def viewed(n: int = 0) -> VideoViewed:
    return VideoViewed(event_id=str(n), video_id=str(uuid.uuid4()), user_id=str(uuid.uuid4()), viewed_at=datetime.now(UTC))


def test_the_buffer_keeps_views_while_publishing_fails_and_publishes_them_in_order():
    publisher, metrics = FlakyPublisher(failures=3), InMemoryViewMetrics()
    buffer = ViewBuffer(publisher, capacity=4, batch_size=3, metrics=metrics, retry_s=0.01, max_retry_s=0.02)

    async def scenario() -> None:
        accepted = [buffer.offer(viewed(n)) for n in range(6)]
        assert accepted == [True] * 4 + [False] * 2
        async with anyio.create_task_group() as group:
            group.start_soon(buffer.run)
            assert await buffer.flush(timeout_s=5)
            group.cancel_scope.cancel()

    anyio.run(scenario)
    assert [decode(message.value, VideoViewed).event_id for message in publisher.published] == ["0", "1", "2", "3"]
    assert (metrics.dropped, metrics.published, metrics.pending, buffer.dropped) == (2, 4, 0, 2)


@pytest.fixture
def beacon(videos):
    bus = InProcessEventBus()
    buffer = ViewBuffer(bus)
    return ViewBeacon(PlaybackCache(videos, InMemoryCache()), InMemoryViewDedup(), buffer, SettableClock(),
                      RandomIdGenerator())


def test_the_beacon_counts_a_viewer_once_per_window(videos, beacon):
    video, viewer = add_video(videos), principal()
    counted = [anyio.run(beacon.viewed, viewer, video.id) for _ in range(2)]
    assert counted == [True, False] and anyio.run(beacon.viewed, principal(), video.id)
    view = decode(beacon.buffer._pending[0].value, VideoViewed)
    assert (view.video_id, view.user_id) == (str(video.id), str(viewer.user_id))
    assert beacon.buffer._pending[0].key == str(video.id).encode()


def test_the_beacon_refuses_videos_the_viewer_may_not_see(videos, beacon):
    video = add_video(videos)
    video.edit_details(video.owner_id, ("user",), visibility="private")
    videos.save(video)
    with pytest.raises(NotFound):
        anyio.run(beacon.viewed, principal(), video.id)
    assert anyio.run(beacon.viewed, principal(roles=("moderator",)), video.id)
    with pytest.raises(NotFound):
        anyio.run(beacon.viewed, principal(), uuid.uuid4())
    assert beacon.buffer.pending == 1


def test_co_views_count_each_viewer_once_per_pair():
    a, b = uuid.uuid4(), uuid.uuid4()
    fan = uuid.uuid4()
    now = datetime.now(UTC)
    views = [VideoViewed(event_id=str(n), video_id=str(video), user_id=str(fan), viewed_at=now + timedelta(n))
             for n, video in enumerate([a, b, a, b])]
    effects = plan_views(views, {})
    assert dict(effects.co_views) == {(b, a): 1, (a, b): 1}
    assert dict(effects.views) == {a: 2, b: 2} and effects.watched[(fan, a)] == now + timedelta(2)
