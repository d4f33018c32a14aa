"""GET /metrics (Prometheus text format) and the HTTP-level metrics it reports.

Routes are labelled by their template (`/api/videos/{video_id:uuid}`), never the raw path,
and requests that match no route by `UNMATCHED`, so the number of series stays bounded.
With PROMETHEUS_MULTIPROC_DIR set (several api workers on one host), a scrape adds up the
value files of every process in that directory instead of reading this process's registry."""

from __future__ import annotations

import asyncio
from bisect import bisect_left

from litestar import Request, Response, get
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector

# Pulled in so that one scrape reports the pipeline's metrics too, whichever process records them.
from adapters.inbound.http.dependencies import BulkheadsDep
from adapters.outbound import breakers as _breaker_metrics  # noqa: F401
from adapters.outbound import metrics as _pipeline_metrics  # noqa: F401

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UPLOAD_ROUTE = "/api/videos/upload"

HTTP_REQUESTS = Counter(
    "vodhub_http_requests", "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_SECONDS = Histogram(
    "vodhub_http_request_duration_seconds", "Time from request to the last byte of the response.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
UPLOADS = Counter("vodhub_uploads", "Upload requests, by outcome (accepted, rejected).", ["outcome"])
UPLOAD_BYTES = Counter(
    "vodhub_upload_bytes", "Request body bytes received by upload requests, by outcome.", ["outcome"],
)


# Requests are tallied here, on the event loop's thread, and added to the metrics in one step
# per series on the loop's next turn (and before every scrape): under load, every request that
# completed in one turn is added at once. Each prometheus_client update takes a lock (and in
# multiprocess mode writes a file), which per request cost as much as a trivial request's handler.
_BOUNDS = HTTP_SECONDS._upper_bounds  # the bucket bounds, +Inf last
_tallies: dict[tuple[str, str, int], list] = {}  # (method, route, status) -> [count, seconds, bucket counts]
_flush_on: asyncio.AbstractEventLoop | None = None  # the loop a flush is scheduled on


def record_request(method: str, route: str | None, status: int, seconds: float, bytes_in: int) -> None:
    method = method if method in METHODS else "OTHER"
    key = (method, route or UNMATCHED, status)
    tally = _tallies.get(key)
    if tally is None:
        tally = _tallies[key] = [0, 0.0, [0] * len(_BOUNDS)]
    tally[0] += 1
    tally[1] += seconds
    tally[2][bisect_left(_BOUNDS, seconds)] += 1  # the first bucket whose bound is >= seconds, as observe() picks
    if route == UPLOAD_ROUTE and method == "POST":
        outcome = "accepted" if 200 <= status < 300 else "rejected"
        UPLOADS.labels(outcome=outcome).inc()
        UPLOAD_BYTES.labels(outcome=outcome).inc(bytes_in)
    _flush_soon()


def _flush_soon() -> None:
    global _flush_on
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # no event loop to flush later on: now
        flush_request_metrics()
        return
    if _flush_on is not loop:  # (a loop that closed before its flush ran is replaced here)
        _flush_on = loop
        loop.call_soon(flush_request_metrics)


def flush_request_metrics() -> None:
    """Add the tallied requests to the metrics."""
    global _flush_on, _tallies
    _flush_on = None
    tallies, _tallies = _tallies, {}
    for (method, route, status), (count, seconds, buckets) in tallies.items():
        requests, durations = _series(method, route, status)
        requests.inc(count)
        durations._sum.inc(seconds)
        for index, bucket_count in enumerate(buckets):
            if bucket_count:
                durations._buckets[index].inc(bucket_count)


# The labelled children of both metrics by (method, route, status). Bounded like the series themselves.
_request_series: dict[tuple[str, str, int], tuple] = {}


def _series(method: str, route: str, status: int) -> tuple:
    series = _request_series.get((method, route, status))
    if series is None:
        labels = {"method": method, "route": route, "status": str(status)}
        series = _request_series[(method, route, status)] = (HTTP_REQUESTS.labels(**labels), HTTP_SECONDS.labels(**labels))
    return series


def _registry() -> CollectorRegistry:
    try:
        registry = CollectorRegistry()
        MultiProcessCollector(registry)  # raises ValueError unless PROMETHEUS_MULTIPROC_DIR is set
    except ValueError:
        return REGISTRY
    return registry


@get(
    "/metrics", tags=["operations"], security=[{}], media_type="text/plain",
    summary="Metrics", description="Prometheus text format (OpenMetrics if the Accept header asks for it).",
)
async def metrics(request: Request, bulkheads: BulkheadsDep) -> Response[bytes]:
    """Request counts and latencies by route and status, uploads, transcode durations, lags."""
    encode, content_type = choose_encoder(request.headers.get("accept", ""))
    flush_request_metrics()
    # On the operations bulkhead's own threads: a scrape never waits behind the api's work.
    return Response(await bulkheads.operations.run(lambda: encode(_registry())), media_type=content_type)
