"""The error answers of each route, in the OpenAPI document: every one is problem+json."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec
from litestar.handlers import HTTPRouteHandler
from litestar.openapi.datastructures import ResponseSpec

from adapters.inbound.http.problems import PROBLEM_JSON, TITLES


class FieldError(msgspec.Struct):
    field: str
    message: str


class Problem(msgspec.Struct):
    """RFC 9457 problem details."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


# Statuses particular to some routes, by route path (as written in the handler).
ROUTE_STATUSES: dict[str, tuple[int, ...]] = {
    "/register": (409,),
    "/login": (401,),
    "/refresh": (401,),
    "/upload": (413, 415),
    "/stream/{video_id:uuid}": (409,),
    "/media/{rest:path}": (403, 416),
    "/health/ready": (503,),
}


def _statuses(handler: HTTPRouteHandler) -> set[int]:
    public = handler.security == [{}]
    operational = any(path.startswith(("/health", "/metrics")) for path in handler.paths)
    statuses = {400, 422, 503} if operational else {400, 422, 429, 503}
    if not public:
        statuses |= {401, 403}
    if "{" in "".join(handler.paths):
        statuses.add(404)
    for path in handler.paths:
        statuses |= set(ROUTE_STATUSES.get(path, ()))
    return statuses


def document_problems(handlers: Iterable[HTTPRouteHandler]) -> None:
    """Add the problem responses a route can give to its OpenAPI operation."""
    for handler in handlers:
        responses = dict(handler.responses or {})
        for status in sorted(_statuses(handler)):
            responses.setdefault(status, ResponseSpec(
                data_container=Problem, media_type=PROBLEM_JSON, generate_examples=False,
                description=TITLES.get(status, "Error"),
            ))
        handler.responses = responses
