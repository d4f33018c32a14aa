"""Every error as application/problem+json (RFC 9457), from one exception-handler table."""

from __future__ import annotations

import logging
import math
import re
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from litestar.types import ExceptionHandlersMap

from application.errors import (
    AuthenticationFailed,
    ConcurrentChange,
    Conflict,
    DomainError,
    InvalidToken,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    TooManyAttempts,
    TooManyStreams,
    Unavailable,
    UnsupportedMedia,
    ValidationError,
)

logger = logging.getLogger("vodhub.http")

PROBLEM_JSON = "application/problem+json"

# Most specific first: the first matching class decides the status.
DOMAIN_STATUS: tuple[tuple[type[DomainError], int, str], ...] = (
    (InvalidToken, 401, "invalid-token"),
    (AuthenticationFailed, 401, "authentication-failed"),
    (PermissionDenied, 403, "forbidden"),
    (NotFound, 404, "not-found"),
    (ConcurrentChange, 409, "concurrent-change"),
    (Conflict, 409, "conflict"),
    (PayloadTooLarge, 413, "payload-too-large"),
    (UnsupportedMedia, 415, "unsupported-media-type"),
    (ValidationError, 422, "validation-error"),
    (TooManyAttempts, 429, "too-many-requests"),
    (TooManyStreams, 429, "too-many-streams"),
    (Unavailable, 503, "backend-unavailable"),
    (DomainError, 422, "rule-violated"),
)

TITLES = {
    400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 409: "Conflict", 410: "Gone", 412: "Precondition Failed",
    413: "Payload Too Large",
    415: "Unsupported Media Type", 416: "Range Not Satisfiable", 422: "Unprocessable Content",
    429: "Too Many Requests", 431: "Request Header Fields Too Large",
    460: "Checksum Mismatch", 500: "Internal Server Error", 503: "Service Unavailable",
}


def problem(
    status: int, detail: str, *, slug: str | None = None, headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    title = TITLES.get(status, "Error")
    body = {
        "type": f"https://vodhub.dev/problems/{slug or title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _bearer_challenge(error: DomainError) -> dict[str, str]:
    if isinstance(error, InvalidToken):
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}
    return {"WWW-Authenticate": "Bearer"}


def domain_error_handler(request: Request, error: DomainError) -> Response:
    status, slug = next((status, slug) for error_class, status, slug in DOMAIN_STATUS if isinstance(error, error_class))
    extra: dict[str, Any] = {}
    if isinstance(error, ValidationError):
        extra["errors"] = [{"field": error.field, "message": error.message}]
    headers = _bearer_challenge(error) if status == 401 else None
    if status == 503:
        logger.warning("backend unavailable on %s %s: %s", request.method, request.url.path, error.__cause__ or error)
    if status in (429, 503):
        # A breaker that is open, a full bulkhead or a spent budget knows when trying again makes sense.
        headers = {"Retry-After": str(max(1, math.ceil(getattr(error, "retry_after_s", RETRY_AFTER_S))))}
    extra.update(getattr(error, "problem_extra", {}))
    return problem(status, str(error), slug=slug, headers=headers, **extra)


def _is_malformed_body(error: ValidationException) -> bool:
    items = [item for item in error.extra or [] if isinstance(item, dict)]
    messages = " ".join(str(item.get("message", "")) for item in items).lower()
    # An absent body surfaces as a bare KeyError message naming the body parameter.
    absent_body = any(item.get("message") == f"'{item.get('key')}'" for item in items)
    return not items or absent_body or "malformed" in messages or "invalid json" in messages


MISSING_FIELD = re.compile(r"missing required field `([^`]+)`")


def _field_of(item: dict) -> str:
    """The body field a decode error is about; msgspec names a missing one only in the message."""
    missing = MISSING_FIELD.search(str(item.get("message", "")))
    if missing:
        return missing.group(1)
    return str(item.get("key") or item.get("source") or "")


def validation_error_handler(_: Request, error: ValidationException) -> Response:
    items = [item for item in error.extra or [] if isinstance(item, dict)]
    if _is_malformed_body(error):
        detail = "; ".join(str(item.get("message")) for item in items) or str(error.detail)
        return problem(400, f"the request body could not be parsed: {detail}", slug="malformed-request")
    errors = [{"field": _field_of(item), "message": str(item.get("message", ""))} for item in items]
    return problem(422, "the request did not validate", slug="validation-error", errors=errors)


def http_error_handler(_: Request, error: HTTPException) -> Response:
    headers = dict(error.headers or {})
    if error.status_code == 401:
        headers.setdefault("WWW-Authenticate", "Bearer")
    return problem(error.status_code, str(error.detail), headers=headers or None)


RETRY_AFTER_S = 5


def backend_error_handler(request: Request, error: Exception) -> Response:
    """A database, broker or store that is down answers 503, never 500: nothing was wrong
    with the request, and it may succeed in a moment."""
    logger.warning("backend unavailable on %s %s: %s", request.method, request.url.path, error)
    return problem(503, "a backend is unavailable; try again shortly", slug="backend-unavailable",
                   headers={"Retry-After": str(RETRY_AFTER_S)})


def unexpected_error_handler(request: Request, error: Exception) -> Response:
    logger.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem(HTTP_500_INTERNAL_SERVER_ERROR, "an unexpected error occurred; it has been logged")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    DomainError: domain_error_handler,
    ConnectionError: backend_error_handler,
    TimeoutError: backend_error_handler,
    ValidationException: validation_error_handler,
    HTTPException: http_error_handler,
    Exception: unexpected_error_handler,
}
