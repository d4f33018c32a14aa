"""Rate limiting: which bucket a request counts against, and 429 when it is empty.

Buckets are per route group (login, upload, default) and per caller:
- routes that need a token count against the *verified* caller (`user:<id>`), checked by the
  `principal` dependency right after the token is verified. An unverified `sub` is never a
  key: anyone could name someone else's id and drain that user's bucket. A request whose
  token does not verify counts against its client address instead;
- every other route counts against the client address (`addr:<ip>`), checked by
  RateLimitMiddleware after routing; POST /api/auth/login against (address, username), the
  username read from the small JSON body, which is then replayed to the route untouched.
Health probes and /metrics are never limited."""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

import msgspec
from litestar import Request
from litestar.enums import ScopeType
from litestar.exceptions import TooManyRequestsException
from litestar.types import ASGIApp, Receive, ReceiveMessage, Scope, Send

from adapters.inbound.http.auth import provide_principal
from adapters.inbound.http.middleware.state import RATE, USER, client_address, rate_limit_headers
from application.accounts import Accounts, Principal
from application.errors import InvalidToken
from application.rate_limits import COMMENT, DEFAULT, LOGIN, UPLOAD, RateLimiter, RateLimits

EXEMPT_ROUTES = frozenset({"/health/live", "/health/ready", "/metrics"})
GROUP_ROUTES = {
    ("POST", "/api/auth/login"): LOGIN,
    ("POST", "/api/videos/upload"): UPLOAD,
    ("POST", "/api/videos/uploads"): UPLOAD,  # a resumable upload counts once, when it is created
    ("POST", "/api/videos/{video_id}/comments"): COMMENT,
}
LOGIN_BODY_MAX = 16 * 1024  # a login body is tiny; past this, count by address alone


class RateLimiting:
    """The limiter and the limits of one app."""

    def __init__(self, limiter: RateLimiter | None, limits: RateLimits) -> None:
        self.limiter = limiter
        self.limits = limits if limiter is not None else RateLimits(login=None, upload=None, comment=None, default=None)

    async def check(self, scope: Scope, group: str, caller: str) -> None:
        """Count the request against the caller's bucket of the group; 429 if it is empty."""
        rate = self.limits.for_group(group)
        if rate is None or self.limiter is None:
            return
        decision = await self.limiter.hit(f"{group}:{caller}", rate)
        scope["state"][RATE] = (decision, rate)
        if not decision.allowed:
            raise TooManyRequestsException(
                detail=f"too many {group} requests: at most {rate.limit} per {rate.period_s:g} s",
                headers=rate_limit_headers(decision, rate),
            )

    async def aclose(self) -> None:
        if self.limiter is not None:
            await self.limiter.aclose()


def group_of(method: str, route: str) -> str:
    """The limit group of a request, from its method and route template."""
    return GROUP_ROUTES.get((method, route), DEFAULT)


def takes_principal(scope: Scope) -> bool:
    handler = scope.get("route_handler")
    return handler is not None and "principal" in handler.parsed_fn_signature.parameters


def principal_provider(rate_limiting: RateLimiting, accounts: Accounts) -> Callable[..., Awaitable[Principal]]:
    """The `principal` dependency: the verified caller, counted against their own bucket.
    It holds `accounts` itself: one dependency fewer for Litestar to resolve on every request."""

    async def provide_counted_principal(request: Request) -> Principal:
        try:
            principal = await provide_principal(request, accounts)
        except InvalidToken:
            await rate_limiting.check(request.scope, DEFAULT, f"addr:{client_address(request.scope)}")
            raise
        request.scope["state"][USER] = str(principal.user_id)
        group = group_of(request.method, request.scope.get("path_template", ""))
        await rate_limiting.check(request.scope, group, f"user:{principal.user_id}")
        return principal

    return provide_counted_principal


class RateLimitMiddleware:
    """Counts requests to routes without a principal against the client address."""

    def __init__(self, app: ASGIApp, rate_limiting: RateLimiting) -> None:
        self.app = app
        self.rate_limiting = rate_limiting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("path_template") in EXEMPT_ROUTES or takes_principal(scope):
            await self.app(scope, receive, send)
            return
        group, caller = group_of(scope["method"], scope.get("path_template", "")), f"addr:{client_address(scope)}"
        if group == LOGIN and self.rate_limiting.limits.login is not None:
            receive, username = await _peek_login_name(receive)
            caller += f"|name:{hashlib.sha256(username.encode()).hexdigest()[:32]}"
        await self.rate_limiting.check(scope, group, caller)
        await self.app(scope, receive, send)


async def _peek_login_name(receive: Receive) -> tuple[Receive, str]:
    """The login's `username_or_email`, and a receive that replays the body read to find it."""
    messages: list[ReceiveMessage] = []
    body = b""
    while len(body) <= LOGIN_BODY_MAX:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        body += message.get("body", b"")
        if not message.get("more_body", False):
            break

    async def replay() -> ReceiveMessage:
        return messages.pop(0) if messages else await receive()

    return replay, _login_name(body) if len(body) <= LOGIN_BODY_MAX else ""


def _login_name(body: bytes) -> str:
    try:
        fields = msgspec.json.decode(body)
    except msgspec.DecodeError:
        return ""
    name = fields.get("username_or_email") if isinstance(fields, dict) else None
    return name.strip().casefold() if isinstance(name, str) else ""
