"""The outermost layer of every request: request id, security and rate-limit headers, one
access-log line and the request metrics.

Litestar runs app-level middleware only after routing, so 404s, 405s and CORS preflights
would pass it by; this wraps the app's whole ASGI handler instead (`observe_requests`).
It is plain ASGI and runs on every request, so it does the least it can: one clock read at
each end, shared by the log and the metrics; the response's header list extended in place;
request ids from a counter rather than the system's random source."""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.enums import ScopeType
from litestar.middleware._internal.cors import CORSMiddleware
from litestar.types import ASGIApp, HTTPResponseStartEvent, HTTPScope, Message, Receive, ReceiveMessage, Scope, Send

from adapters.inbound.http.metrics import record_request
from adapters.inbound.http.middleware.access_log import access_log, log_access
from adapters.inbound.http.middleware.state import RATE, REQUEST_ID, USER, client_address, rate_limit_headers
from adapters.inbound.http.problems import problem

REQUEST_ID_HEADER = b"x-request-id"
ORIGIN_HEADER = b"origin"
SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
RATE_LIMIT_LIMIT = b"ratelimit-limit"

# 32 hex digits, unique per process and request: a random prefix and a counter.
_REQUEST_ID_PREFIX = os.urandom(8).hex()
_request_numbers = itertools.count()


def observe_requests(app: Litestar, cors: CORSConfig | None = None, max_header_bytes: int = 16 * 1024) -> Litestar:
    """Wrap the app's outermost ASGI handler (inside Litestar's own entry point) with ObserveRequests."""
    app.asgi_handler = ObserveRequests(app.asgi_handler, cors, max_header_bytes)
    return app


def _new_request_id() -> str:
    """A caller's sane X-Request-ID (1-128 of [A-Za-z0-9._-]) is kept; else this one."""
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers) & 0xFFFFFFFFFFFFFFFF:016x}"


def _add_response_headers(message: HTTPResponseStartEvent, state: dict[str, Any]) -> None:
    """Our headers onto the response's own list (a copy only if it is not a list)."""
    given = message.get("headers")
    headers: list[tuple[bytes, bytes]] = [] if given is None else given if type(given) is list else list(given)
    present = set()
    for index in range(len(headers) - 1, -1, -1):
        name = headers[index][0].lower()
        if name == REQUEST_ID_HEADER:
            del headers[index]
        else:
            present.add(name)
    headers.append((REQUEST_ID_HEADER, state[REQUEST_ID].encode("ascii")))
    for header in SECURITY_HEADERS:
        if header[0] not in present:
            headers.append(header)
    if RATE in state and RATE_LIMIT_LIMIT not in present:  # a 429 carries them already
        rate_headers = rate_limit_headers(*state[RATE])
        headers.extend((name.lower().encode(), value.encode()) for name, value in rate_headers.items())
    message["headers"] = headers


class ObserveRequests:
    """Also, from one pass over the request's headers: 431 past VODHUB_MAX_HEADER_BYTES
    (httptools, unlike h11, sets no bound of its own), and Litestar's CORS middleware for
    requests with an Origin only (browsers' cross-origin ones): the rest, the gateway's and
    players' alike, skip its header parsing."""

    __slots__ = ("app", "cors_app", "max_header_bytes")

    def __init__(self, app: ASGIApp, cors: CORSConfig | None = None, max_header_bytes: int = 16 * 1024) -> None:
        self.app = app
        self.cors_app = CORSMiddleware(app, cors) if cors is not None else app
        self.max_header_bytes = max_header_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started, path = time.perf_counter(), scope["path"]  # the router rewrites scope["path"]
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        app, request_id = self.app, None
        header_bytes = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value) + 4  # ": " and CRLF
            if name == REQUEST_ID_HEADER and request_id is None and SANE_REQUEST_ID.fullmatch(value):
                request_id = value.decode("ascii")
            elif name == ORIGIN_HEADER:
                app = self.cors_app
        state[REQUEST_ID] = request_id or _new_request_id()
        status, bytes_in = 500, 0  # 500 unless a response starts: the app failed before answering

        async def counting_receive() -> ReceiveMessage:
            nonlocal bytes_in
            message = await receive()
            if message["type"] == "http.request":
                bytes_in += len(message.get("body", b""))
            return message

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                _add_response_headers(message, state)
            await send(message)

        try:
            if header_bytes > self.max_header_bytes:
                app = _headers_too_large(self.max_header_bytes)
            await app(scope, counting_receive, send_with_headers)
        finally:
            seconds = time.perf_counter() - started
            route = scope.get("path_template") or None
            record_request(scope["method"], route, status, seconds, bytes_in)
            _log_access(scope, path, route, status, seconds, bytes_in)


def _headers_too_large(max_bytes: int) -> ASGIApp:
    async def answer(scope: Scope, receive: Receive, send: Send) -> None:
        response = problem(431, f"the request line and headers exceed {max_bytes} bytes")
        request = scope["litestar_app"].request_class(scope=scope, receive=receive, send=send)
        await response.to_asgi_response(app=None, request=request)(scope, receive, send)

    return answer


def _log_access(scope: HTTPScope, path: str, route: str | None, status: int, seconds: float, bytes_in: int) -> None:
    if not access_log.isEnabledFor(logging.INFO):
        return
    state = scope["state"]
    fields = {
        "request_id": state[REQUEST_ID], "method": scope["method"], "path": path, "route": route,
        "status": status, "duration_ms": round(seconds * 1000, 2), "user": state.get(USER),
        "client": client_address(scope), "bytes_in": bytes_in,
    }
    log_access(f"{scope['method']} {path} {status}", fields)
