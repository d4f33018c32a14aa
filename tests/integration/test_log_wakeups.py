"""Followers act as soon as their log grows, not at their next poll: a save in this process rings
the log's signal, and on PostgreSQL so does another process's (eventsourcing NOTIFYs on every
insert; the follower's process LISTENs)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Sequence

import anyio
import pytest
from eventsourcing.popo import POPOTrackingRecorder

from adapters.outbound.clock import RandomIdGenerator, SystemClock
from adapters.outbound.object_storage import InMemoryObjectStorage
from adapters.outbound.postgres_appends import appends_listener
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from application.following import LogFollower, LogSignal
from application.videos import Videos
from domain.videos import Video

POLL_S = 60.0  # far longer than a test waits: only a wake-up gets the follower there in time
WITHIN_S = 5.0


def videos_log(env: dict[str, str] | None = None) -> Videos:
    return Videos(storage=InMemoryObjectStorage(), inspector=PyAVMediaInspector(), clock=SystemClock(),
                  ids=RandomIdGenerator(), max_upload_bytes=10**9, env=env)


def upload(log: Videos) -> uuid.UUID:
    video = Video.upload(
        uuid.uuid4(), uuid.uuid4(), ("user",), title="t", description="", tags=[], visibility="public",
        source_key="raw/k/original.mp4", source_size=5, source_content_type="video/mp4", source_sha256="ab" * 32,
    )
    log.save(video)
    return video.id


class Seen(LogFollower):
    def __init__(self, source: Videos) -> None:
        super().__init__(source, POPOTrackingRecorder())
        self.ids: list[uuid.UUID] = []
        self.grew = anyio.Event()

    async def handle(self, events: Sequence) -> None:
        self.ids.extend(event.originator_id for event in events)
        self.grew.set()


async def acts_in_time(follower: Seen, append) -> bool:
    """Start following (the log read once, the follower waiting), append: has the follower
    acted on the append within WITHIN_S?"""
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: follower.run(poll_interval=POLL_S, stop=stop))
        await anyio.sleep(0.5)  # its first read is done; it waits now
        video_id = await anyio.to_thread.run_sync(append)
        with anyio.move_on_after(WITHIN_S):
            await follower.grew.wait()
        stop.set()
    return follower.ids == [video_id]


def test_a_save_in_this_process_wakes_the_follower():
    log = videos_log()
    try:
        assert anyio.run(acts_in_time, Seen(log), lambda: upload(log))
    finally:
        log.close()


@pytest.mark.parametrize("listening", [True, False], ids=["listening", "not-listening"])
def test_an_append_by_another_process_wakes_the_follower_that_listens(postgres_eventstore_env, listening):
    here, elsewhere = videos_log(postgres_eventstore_env), videos_log(postgres_eventstore_env)
    if listening:
        here.log_signal.listen_with(appends_listener(here.recorder))
    try:
        # The control: without the listener, only the 60 s poll would see it.
        assert anyio.run(acts_in_time, Seen(here), lambda: upload(elsewhere)) is listening
    finally:
        here.close()
        elsewhere.close()


def test_a_wait_returns_at_once_when_it_rang_after_the_read():
    signal = LogSignal()
    seen = signal.rung
    signal.ring()  # between the follower's read and its wait

    async def wait() -> None:
        with anyio.fail_after(1):
            await signal.wait(seen, POLL_S)

    anyio.run(wait)


def test_a_ring_from_another_thread_ends_a_wait_and_nothing_else_does():
    signal = LogSignal()

    async def wait_for_a_ring() -> None:
        with anyio.fail_after(WITHIN_S):
            await signal.wait(signal.rung, POLL_S)

    async def unrung() -> bool:
        with anyio.move_on_after(0.3) as scope:
            await signal.wait(signal.rung, POLL_S)
        return scope.cancelled_caught

    assert anyio.run(unrung)
    threading.Timer(0.2, signal.ring).start()
    anyio.run(wait_for_a_ring)
