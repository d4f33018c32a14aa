"""Requests are tallied and added to the metrics in one step per series: what a scrape then
reads is what observing each request would have given."""

from __future__ import annotations

import uuid

import anyio
from prometheus_client import REGISTRY, CollectorRegistry, Histogram

from adapters.inbound.http.metrics import HTTP_SECONDS, flush_request_metrics, record_request

SECONDS = [0.001, 0.005, 0.0051, 0.3, 60, 1000.0]  # bounds themselves, between them, and past the last


def scraped(route: str) -> dict[str, float | None]:
    labels = {"method": "GET", "route": route, "status": "200"}
    buckets = {f"le={bound}": REGISTRY.get_sample_value("vodhub_http_request_duration_seconds_bucket",
                                                        {**labels, "le": _le(bound)}) for bound in HTTP_SECONDS._upper_bounds}
    return {**buckets, "sum": REGISTRY.get_sample_value("vodhub_http_request_duration_seconds_sum", labels),
            "requests": REGISTRY.get_sample_value("vodhub_http_requests_total", labels)}


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else str(bound)


def observed_one_by_one() -> dict[str, float | None]:
    registry = CollectorRegistry()
    reference = Histogram("reference_seconds", "", buckets=HTTP_SECONDS._upper_bounds, registry=registry)
    for seconds in SECONDS:
        reference.observe(seconds)
    buckets = {f"le={bound}": registry.get_sample_value("reference_seconds_bucket", {"le": _le(bound)})
               for bound in HTTP_SECONDS._upper_bounds}
    return {**buckets, "sum": registry.get_sample_value("reference_seconds_sum"), "requests": float(len(SECONDS))}


def test_a_flush_adds_what_observing_each_request_would_have():
    route = f"/test/{uuid.uuid4()}"

    async def answer_requests() -> None:
        for seconds in SECONDS:
            record_request("GET", route, 200, seconds, 0)

    anyio.run(answer_requests)  # its loop closed before its flush was due
    flush_request_metrics()  # as a scrape does first
    assert scraped(route) == observed_one_by_one()


def test_tallies_reach_the_metrics_on_the_loops_next_turn():
    route = f"/test/{uuid.uuid4()}"

    async def answer_then_yield() -> None:
        record_request("GET", route, 200, 0.01, 0)
        record_request("GET", route, 200, 0.02, 0)
        assert scraped(route)["requests"] is None  # tallied, not yet added
        await anyio.sleep(0)
        await anyio.sleep(0)
        assert scraped(route)["requests"] == 2

    anyio.run(answer_then_yield)


def test_without_an_event_loop_a_request_is_added_at_once():
    route = f"/test/{uuid.uuid4()}"
    record_request("GET", route, 200, 0.01, 0)
    assert scraped(route)["requests"] == 1
