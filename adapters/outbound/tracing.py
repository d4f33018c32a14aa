"""OpenTelemetry tracing: set up by settings, and the trace context carried between processes.

One upload is one trace. The api's request span is the root; every domain event stored while
a span is current keeps that span's W3C `traceparent` in its stored state (TracingMapper); the
relay gives the messages announcing an event the event's traceparent (Kafka header
`traceparent`); a consumer continues the trace from the header, so the events it stores in turn
carry its span, and so on to the projector.

Off unless configured (`configure`): then nothing here creates a span, and the only cost left
is a dict lookup per stored or loaded event.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import UUID

from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
STATE_KEY = "__traceparent__"  # the stored event state's field; never reaches a domain event
REMEMBERED = 20_000  # loaded events whose traceparent is kept for the relay and the projector

_enabled = False
_propagator = TraceContextTextMapPropagator()
_tracer = trace.get_tracer("vodhub")


def enabled() -> bool:
    return _enabled


def configure(service_name: str, otlp_endpoint: str | None, console: bool = False,
              sample_ratio: float = 1.0) -> bool:
    """Export this process's spans to an OTLP/HTTP endpoint (`http://collector:4318`) and/or the
    console; neither: tracing stays off. Returns whether it is on."""
    if not otlp_endpoint and not console:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    provider = TracerProvider(resource=Resource.create({"service.name": service_name}),
                              sampler=ParentBased(TraceIdRatioBased(sample_ratio)))
    if otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(f"{otlp_endpoint.rstrip('/')}/v1/traces")))
    if console:
        provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
    trace.set_tracer_provider(provider)  # the instrumentations' spans go there too
    use_provider(provider)
    return True


def use_provider(provider: Any) -> None:
    """Trace vodhub's own spans with this TracerProvider (tests pass one with an in-memory exporter)."""
    global _enabled, _tracer
    _tracer = provider.get_tracer("vodhub")
    _enabled = True


def disable() -> None:
    global _enabled
    _enabled = False


def instrument_libraries() -> None:
    """Spans for every PostgreSQL statement and Redis command, under whatever span is current."""
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor

    PsycopgInstrumentor().instrument(skip_dep_check=True)
    RedisInstrumentor().instrument()


def tracer() -> trace.Tracer:
    return _tracer


def current_traceparent() -> str | None:
    """The current span's W3C traceparent, if tracing is on and a span is current."""
    if not _enabled:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def current_ids() -> dict[str, str]:
    """trace_id and span_id of the current span for a log line; empty when there is none."""
    if not _enabled:
        return {}
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return {}
    return {"trace_id": format(span_context.trace_id, "032x"), "span_id": format(span_context.span_id, "016x")}


def parent_context(traceparent: str | None) -> otel_context.Context | None:
    return _propagator.extract({TRACEPARENT: traceparent}) if traceparent else None


@contextmanager
def span_from(traceparent: str | None, name: str, kind: SpanKind = SpanKind.INTERNAL,
              attributes: dict[str, Any] | None = None) -> Iterator[Span | None]:
    """A current span continuing the trace of `traceparent`; nothing when tracing is off or
    there is no trace to continue (old events, a message from an untraced process)."""
    if not _enabled or not traceparent:
        yield None
        return
    with _tracer.start_as_current_span(name, context=parent_context(traceparent), kind=kind,
                                       attributes=attributes) as span:
        yield span


# --- the trace context of stored events ----------------------------------------------------

_remembered: OrderedDict[tuple[UUID, int], str] = OrderedDict()
_remembered_lock = threading.Lock()


def trace_context_of(event: DomainEventProtocol) -> str | None:
    """The traceparent stored with a loaded event, if it had one."""
    with _remembered_lock:
        return _remembered.get((event.originator_id, event.originator_version))


def _remember(originator_id: UUID, version: int, traceparent: str) -> None:
    with _remembered_lock:
        _remembered[(originator_id, version)] = traceparent
        while len(_remembered) > REMEMBERED:
            _remembered.popitem(last=False)


class TracingMapper(Mapper):
    """Stores the current traceparent in an event's state, and takes it out again on load:
    domain events never see it (their attributes are their aggregate's method arguments).
    Every process uses it, traced or not, so any process can read what a traced one stored."""

    def to_stored_event(self, domain_event: DomainEventProtocol) -> StoredEvent:
        traceparent = current_traceparent()
        if traceparent:
            carrying = object.__new__(type(domain_event))
            object.__setattr__(carrying, "__dict__", {**vars(domain_event), STATE_KEY: traceparent})
            domain_event = carrying
        return super().to_stored_event(domain_event)

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol:
        domain_event = super().to_domain_event(stored_event)
        traceparent = vars(domain_event).pop(STATE_KEY, None)
        if traceparent:
            _remember(domain_event.originator_id, domain_event.originator_version, traceparent)
        return domain_event


MAPPER_TOPIC = f"{TracingMapper.__module__}:{TracingMapper.__qualname__}"
