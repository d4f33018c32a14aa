"""The outermost layer of every request: request id, security and rate-limit headers, one
access-log line and the request metrics.

Litestar runs app-level middleware only after routing, so 404s, 405s and CORS preflights
would pass it by; this wraps the app's whole ASGI handler instead (`observe_requests`)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable

from litestar import Litestar
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from adapters.inbound.http.metrics import record_request
from adapters.inbound.http.middleware.access_log import access_log
from adapters.inbound.http.middleware.state import RATE, REQUEST_ID, USER, client_address, rate_limit_headers

REQUEST_ID_HEADER = b"x-request-id"
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


def observe_requests(app: Litestar) -> Litestar:
    """Wrap the app's outermost ASGI handler (inside Litestar's own entry point) with ObserveRequests."""
    app.asgi_handler = ObserveRequests(app.asgi_handler)
    return app


def request_id_of(scope: Scope) -> str:
    """The caller's X-Request-ID if it is sane (1-128 of [A-Za-z0-9._-]), else a new one."""
    for name, value in scope["headers"]:
        if name == REQUEST_ID_HEADER and SANE_REQUEST_ID.fullmatch(value):
            return value.decode("ascii")
    return uuid.uuid4().hex


def _response_headers(headers: Iterable[tuple[bytes, bytes]], state: dict) -> list[tuple[bytes, bytes]]:
    headers = [(name, value) for name, value in headers if name.lower() != REQUEST_ID_HEADER]
    present = {name.lower() for name, _ in headers}
    headers.append((REQUEST_ID_HEADER, state[REQUEST_ID].encode("ascii")))
    headers.extend(header for header in SECURITY_HEADERS if header[0] not in present)
    if RATE in state and b"ratelimit-limit" not in present:  # a 429 carries them already
        rate_headers = rate_limit_headers(*state[RATE])
        headers.extend((name.lower().encode(), value.encode()) for name, value in rate_headers.items())
    return headers


class ObserveRequests:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, path = time.perf_counter(), scope["path"]  # the router rewrites scope["path"]
        state = scope.setdefault("state", {})
        state[REQUEST_ID] = request_id_of(scope)
        status, bytes_in = 500, 0  # 500 unless a response starts: the app failed before answering

        async def counting_receive() -> Message:
            nonlocal bytes_in
            message = await receive()
            bytes_in += len(message.get("body", b""))
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": _response_headers(message.get("headers", ()), state)}
            await send(message)

        try:
            await self.app(scope, counting_receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or None
            record_request(scope["method"], route, status, seconds, bytes_in)
            _log_access(scope, path, route, status, seconds, bytes_in)


def _log_access(scope: Scope, path: str, route: str | None, status: int, seconds: float, bytes_in: int) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    state = scope["state"]
    fields = {
        "request_id": state[REQUEST_ID], "method": scope["method"], "path": path, "route": route,
        "status": status, "duration_ms": round(seconds * 1000, 2), "user": state.get(USER),
        "client": client_address(scope), "bytes_in": bytes_in,
    }
    access_log.info("%s %s %d", scope["method"], path, status, extra={"fields": fields})
