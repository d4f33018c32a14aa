"""Spans around what drives the use cases: a consumed message, a projected event, an HTTP request.

Each wrapper is put in place by a composition root only when tracing is on, so an untraced
process runs exactly the code it ran before."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eventsourcing.persistence import Tracking
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry import trace

from adapters.inbound.messaging import IncomingMessage, MessageHandler
from adapters.outbound import tracing


def traced_handler(handler: MessageHandler, group: str, names: Mapping[str, str] | None = None) -> MessageHandler:
    """Each attempt at a message is a consumer span continuing the trace its `traceparent`
    header carries; what the handler stores then carries that span on (TracingMapper).
    `names` names the spans by topic (`plan`, `task`), else `process <topic>`."""

    async def handle(message: IncomingMessage, *, attempt: int, final_attempt: bool) -> None:
        name = (names or {}).get(message.topic) or f"process {message.topic}"
        attributes = {
            "messaging.system": "kafka", "messaging.consumer.group.name": group,
            "messaging.destination.name": message.topic, "messaging.destination.partition.id": str(message.partition),
            "messaging.kafka.offset": message.offset, "messaging.kafka.message.key": message.key.decode("utf-8", "replace"),
            "vodhub.attempt": attempt,
        }
        with tracing.span_from(message.trace_context, name, trace.SpanKind.CONSUMER, attributes):
            await handler(message, attempt=attempt, final_attempt=final_attempt)

    return handle


def trace_projection(projection: Any, name: str) -> None:
    """Project each traced event under a span of its trace (`<name> <EventType>`)."""
    process_event: Callable[[Any, Tracking], None] = projection.process_event

    def traced_process_event(domain_event: Any, tracking: Tracking) -> None:
        traceparent = tracing.trace_context_of(domain_event)
        with tracing.span_from(traceparent, f"{name} {type(domain_event).__qualname__}",
                               attributes={"vodhub.notification_id": tracking.notification_id}):
            process_event(domain_event, tracking)

    projection.process_event = traced_process_event


def traced_asgi(app: ASGIApp) -> ASGIApp:
    """A server span per HTTP request (opentelemetry-instrumentation-asgi), named after the
    route template once routing found one, so ids in paths never make span names unbounded."""
    from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

    async def name_after_route(scope: Scope, receive: Receive, send: Send) -> None:
        span = trace.get_current_span()

        async def naming_send(message: Message) -> None:
            # Routing is done once the answer starts (the span may end with its last byte).
            template = scope.get("path_template")
            if message["type"] == "http.response.start" and template and span.is_recording():
                span.update_name(f"{scope.get('method', 'HTTP')} {template}")
                span.set_attribute("http.route", template)
            await send(message)

        await app(scope, receive, naming_send)

    # Its ASGI types are plain mappings, Litestar's are TypedDicts: the same protocol, spelled apart.
    return OpenTelemetryMiddleware(  # type: ignore[return-value]
        name_after_route, default_span_details=lambda scope: (scope.get("method") or "HTTP", {}),
        exclude_spans=["receive", "send"], excluded_urls="/health/live,/health/ready,/metrics",
    )
