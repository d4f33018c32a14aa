"""The integration-event contract, and its trip through the in-process bus."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import anyio
import msgspec
import pytest

from adapters.outbound.in_process_bus import InProcessEventBus
from application.integration_events import (
    VIDEO_PROCESSED_TOPIC,
    VIDEO_UPLOADED_TOPIC,
    InvalidIntegrationEvent,
    VideoProcessed,
    VideoUploaded,
    dead_letter_topic,
    decode,
    encode,
    to_message,
)
from application.ports import OutgoingMessage

UPLOADED = VideoUploaded(
    event_id="5b0c0f9e-3f57-4a8e-9c55-1a0a4d3c2b10",
    video_id="0f8d6c1e-7a2b-4c3d-8e9f-0a1b2c3d4e5f",
    user_id="a3e1c2b4-5d6f-4a7b-8c9d-0e1f2a3b4c5d",
    raw_key="raw/0f8d6c1e-7a2b-4c3d-8e9f-0a1b2c3d4e5f/original.mp4",
    size=1_048_576,
    content_type="video/mp4",
    uploaded_at=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
)
PROCESSED = VideoProcessed(
    event_id="9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a",
    video_id=UPLOADED.video_id,
    status="ready",
    renditions=["240p", "480p", "720p"],
    hls_key="processed/0f8d6c1e-7a2b-4c3d-8e9f-0a1b2c3d4e5f/cmaf/master.m3u8",
    dash_key="processed/0f8d6c1e-7a2b-4c3d-8e9f-0a1b2c3d4e5f/cmaf/manifest.mpd",
    failure_reason=None,
    processed_at=datetime(2025, 1, 2, 3, 9, 0, tzinfo=UTC),
)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.mark.parametrize("event", [UPLOADED, PROCESSED], ids=["uploaded", "processed"])
def test_events_survive_encoding(event):
    assert decode(encode(event), type(event)) == event


def test_encoded_event_is_json_with_a_schema_version():
    document = json.loads(encode(UPLOADED))

    assert document["schema_version"] == 1
    assert document["uploaded_at"] == "2025-01-02T03:04:05Z"


def test_decode_ignores_fields_added_by_newer_producers():
    document = json.loads(encode(PROCESSED)) | {"schema_version": 2, "duration_s": 12.5}

    assert decode(json.dumps(document).encode(), VideoProcessed) == msgspec.structs.replace(
        PROCESSED, schema_version=2
    )


@pytest.mark.parametrize(
    "data",
    [b"\x00\xffnot json", b"[1, 2]", b'{"video_id": "v"}', encode(PROCESSED)],
    ids=["garbage", "not-an-object", "missing-fields", "other-event-type"],
)
def test_decode_rejects_what_is_not_the_expected_event(data):
    with pytest.raises(InvalidIntegrationEvent, match="not a valid VideoUploaded"):
        decode(data, VideoUploaded)


def test_decode_rejects_a_timestamp_without_timezone():
    document = json.loads(encode(UPLOADED)) | {"uploaded_at": "2025-01-02T03:04:05"}

    with pytest.raises(InvalidIntegrationEvent, match="uploaded_at"):
        decode(json.dumps(document).encode(), VideoUploaded)


def test_messages_are_keyed_by_video_id():
    message = to_message(UPLOADED, VIDEO_UPLOADED_TOPIC)

    assert message == OutgoingMessage(
        topic="video-uploaded-events", key=UPLOADED.video_id.encode(), value=encode(UPLOADED)
    )
    assert dead_letter_topic(VIDEO_UPLOADED_TOPIC) == "video-uploaded-events.dlq"


@pytest.mark.anyio
async def test_in_process_bus_delivers_each_topic_in_publish_order():
    bus = InProcessEventBus()
    uploads = [to_message(UPLOADED, VIDEO_UPLOADED_TOPIC), OutgoingMessage(VIDEO_UPLOADED_TOPIC, b"k", b"2")]
    # Published before anyone subscribed: the messages wait for the subscriber.
    await bus.publish(uploads)
    await bus.publish([to_message(PROCESSED, VIDEO_PROCESSED_TOPIC)])
    await bus.publish([OutgoingMessage(VIDEO_UPLOADED_TOPIC, b"k", b"3")])

    received = []
    with anyio.fail_after(1):
        async for message in bus.subscribe(VIDEO_UPLOADED_TOPIC):
            received.append(message)
            if len(received) == 3:
                break

    assert [message.value for message in received] == [encode(UPLOADED), b"2", b"3"]
    assert decode(received[0].value, VideoUploaded) == UPLOADED
    assert bus.pending(VIDEO_UPLOADED_TOPIC) == 0
    assert bus.pending(VIDEO_PROCESSED_TOPIC) == 1


@pytest.mark.anyio
async def test_in_process_bus_wakes_a_waiting_subscriber():
    bus = InProcessEventBus()
    received = []

    async def consume_one():
        async for message in bus.subscribe(VIDEO_PROCESSED_TOPIC):
            received.append(message)
            return

    with anyio.fail_after(1):
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(consume_one)
            await anyio.sleep(0.01)
            await bus.publish([to_message(PROCESSED, VIDEO_PROCESSED_TOPIC)])

    assert received == [to_message(PROCESSED, VIDEO_PROCESSED_TOPIC)]
