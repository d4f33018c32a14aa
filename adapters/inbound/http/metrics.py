"""GET /metrics (Prometheus text format) and the HTTP-level metrics it reports.

Routes are labelled by their template (`/api/videos/{video_id:uuid}`), never the raw path,
and requests that match no route by `UNMATCHED`, so the number of series stays bounded.
With PROMETHEUS_MULTIPROC_DIR set (several api workers on one host), a scrape adds up the
value files of every process in that directory instead of reading this process's registry."""

from __future__ import annotations

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


# The labelled children of both metrics by (method, route, status): labels() takes a lock and
# builds a key on every call. Bounded like the series themselves.
_request_series: dict[tuple[str, str, int], tuple] = {}


def _series(method: str, route: str, status: int) -> tuple:
    series = _request_series.get((method, route, status))
    if series is None:
        labels = {"method": method, "route": route, "status": str(status)}
        series = _request_series[(method, route, status)] = (HTTP_REQUESTS.labels(**labels), HTTP_SECONDS.labels(**labels))
    return series


def record_request(method: str, route: str | None, status: int, seconds: float, bytes_in: int) -> None:
    method = method if method in METHODS else "OTHER"
    requests, durations = _series(method, route or UNMATCHED, status)
    requests.inc()
    durations.observe(seconds)
    if route == UPLOAD_ROUTE and method == "POST":
        outcome = "accepted" if 200 <= status < 300 else "rejected"
        UPLOADS.labels(outcome=outcome).inc()
        UPLOAD_BYTES.labels(outcome=outcome).inc(bytes_in)


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
    # On the operations bulkhead's own threads: a scrape never waits behind the api's work.
    return Response(await bulkheads.operations.run(lambda: encode(_registry())), media_type=content_type)
