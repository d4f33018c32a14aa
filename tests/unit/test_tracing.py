"""The trace context's way through one process, with the SDK's in-memory exporter: into a stored
event, out of it onto the relay's messages, on through a consumer's span; and nothing when off.
tests/e2e/test_full_stack.py follows one upload's trace across the real processes."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import anyio
import pytest
from eventsourcing.popo import POPOTrackingRecorder
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters.inbound.http.middleware.access_log import JsonLinesFormatter
from adapters.inbound.messaging import IncomingMessage
from adapters.inbound.tracing import traced_handler
from adapters.outbound import tracing
from adapters.outbound.clock import RandomIdGenerator, SettableClock
from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.object_storage import InMemoryObjectStorage
from adapters.outbound.pyav_media_inspector import PyAVMediaInspector
from application.relay import OutboxRelay
from application.videos import Videos
from tests.fixtures.videos import add_video
from tests.unit.test_relay import drain


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracing.use_provider(provider)
    try:
        yield exporter
    finally:
        tracing.disable()


@pytest.fixture
def videos() -> Iterator[Videos]:
    app = Videos(storage=InMemoryObjectStorage(), inspector=PyAVMediaInspector(), clock=SettableClock(),
                 ids=RandomIdGenerator(), max_upload_bytes=10**9,
                 env={"PERSISTENCE_MODULE": "eventsourcing.popo", "MAPPER_TOPIC": tracing.MAPPER_TOPIC})
    yield app
    app.close()


def test_a_stored_event_keeps_the_trace_of_the_span_that_stored_it(exporter, videos):
    with tracing.tracer().start_as_current_span("POST /api/videos/upload") as request:
        traceparent = tracing.current_traceparent()
        video = add_video(videos)
    assert traceparent and traceparent.split("-")[1] == format(request.get_span_context().trace_id, "032x")
    [stored] = videos.recorder.select_notifications(start=1, limit=10)
    assert traceparent.encode() in stored.state

    [event] = list(videos.events.get(video.id))  # loaded again: the domain event never sees it
    assert tracing.STATE_KEY not in vars(event)
    assert tracing.trace_context_of(event) == traceparent
    assert videos.repository.get(video.id).title == video.title


def test_the_relay_publishes_an_event_in_the_trace_of_the_event(exporter, videos):
    with tracing.tracer().start_as_current_span("upload"):
        traceparent = tracing.current_traceparent()
        add_video(videos)
    untraced = add_video(videos)
    bus = InProcessEventBus()
    relay = OutboxRelay(videos, POPOTrackingRecorder(), bus, trace_context_of=tracing.trace_context_of)
    anyio.run(relay.relay_once)
    traced_message, untraced_message = drain(bus, "video-uploaded-events")
    assert traced_message.trace_context == traceparent
    assert untraced_message.key == str(untraced.id).encode() and untraced_message.trace_context is None


def test_a_consumer_continues_the_trace_of_its_message(exporter):
    with tracing.tracer().start_as_current_span("publish video-uploaded-events") as publish:
        traceparent = tracing.current_traceparent()
    seen: list[str | None] = []

    async def handler(message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
        seen.append(tracing.current_traceparent())

    traced = traced_handler(handler, "video-processing", {"video-uploaded-events": "plan"})
    message = IncomingMessage("video-uploaded-events", 2, 7, b"video-id", b"{}", trace_context=traceparent)
    anyio.run(lambda: traced(message, attempt=1, final_attempt=False))

    plan = next(span for span in exporter.get_finished_spans() if span.name == "plan")
    assert plan.context.trace_id == publish.get_span_context().trace_id
    assert plan.parent.span_id == publish.get_span_context().span_id
    assert plan.attributes["messaging.kafka.offset"] == 7 and plan.attributes["messaging.consumer.group.name"]
    [stored] = seen  # what the handler stores carries its span
    assert stored and stored.startswith(f"00-{plan.context.trace_id:032x}-{plan.context.span_id:016x}-")


def test_json_log_lines_carry_the_trace_and_span_ids(exporter):
    record = logging.LogRecord("vodhub.access", logging.INFO, __file__, 1, "GET / 200", None, None)
    assert "trace_id" not in json.loads(JsonLinesFormatter().format(record))
    with tracing.tracer().start_as_current_span("GET /") as span:
        line = json.loads(JsonLinesFormatter().format(record))
    assert line["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(span.get_span_context().span_id, "016x")


def test_off_nothing_is_traced_or_stored(videos):
    assert not tracing.enabled()
    assert tracing.current_traceparent() is None and tracing.current_ids() == {}
    with tracing.span_from("00-" + "1" * 32 + "-" + "2" * 16 + "-01", "plan") as span:
        assert span is None
    video = add_video(videos)
    [stored] = videos.recorder.select_notifications(start=1, limit=10)
    assert b"traceparent" not in stored.state
    assert tracing.trace_context_of(next(iter(videos.events.get(video.id)))) is None
    assert not tracing.configure("vodhub-api", otlp_endpoint=None)
