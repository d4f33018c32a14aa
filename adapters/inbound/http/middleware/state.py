"""What the layers of one request tell each other through the ASGI scope's `state`."""

from __future__ import annotations

import math

from litestar.types import Scope

from application.rate_limits import Rate, RateDecision

REQUEST_ID = "vodhub.request_id"
USER = "vodhub.user"  # the authenticated caller's id, once the principal is known
RATE = "vodhub.rate"  # (RateDecision, Rate) of the bucket the request counted against


def client_address(scope: Scope) -> str:
    """The peer's address; behind a proxy, uvicorn sets it from X-Forwarded-For when the proxy
    is trusted (uvicorn's --forwarded-allow-ips / FORWARDED_ALLOW_IPS, 127.0.0.1 by default)."""
    client = scope.get("client")
    return client[0] if client else "unknown"


def rate_limit_headers(decision: RateDecision, rate: Rate) -> dict[str, str]:
    """RateLimit-* as in draft-ietf-httpapi-ratelimit-headers (-06): seconds are delta-seconds."""
    headers = {
        "RateLimit-Limit": str(decision.limit),
        "RateLimit-Remaining": str(decision.remaining),
        "RateLimit-Reset": str(math.ceil(decision.reset_after_s)),
        "RateLimit-Policy": f"{rate.limit};w={rate.period_s:g}",
    }
    if not decision.allowed:
        headers["Retry-After"] = str(max(1, math.ceil(decision.retry_after_s)))
    return headers
