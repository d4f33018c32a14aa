"""What the layers of one request tell each other through the ASGI scope's `state`."""

from __future__ import annotations

import math
from collections.abc import Iterable
from ipaddress import IPv4Network, IPv6Address, IPv6Network, ip_address

from litestar.types import Scope

from application.rate_limits import Rate, RateDecision

REQUEST_ID = "vodhub.request_id"
USER = "vodhub.user"  # the authenticated caller's id, once the principal is known
RATE = "vodhub.rate"  # (RateDecision, Rate) of the bucket the request counted against


TRUSTED_PROXIES = "vodhub.trusted_proxies"  # app state: the TrustedProxies of VODHUB_TRUSTED_PROXIES
CLIENT = "vodhub.client"  # the client address, once worked out
FORWARDED_FOR = b"x-forwarded-for"


class TrustedProxies:
    """The networks (VODHUB_TRUSTED_PROXIES) whose X-Forwarded-For is believed."""

    def __init__(self, networks: Iterable[IPv4Network | IPv6Network] = ()) -> None:
        self.networks = tuple(networks)

    def __contains__(self, address: str) -> bool:
        try:
            parsed = ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if isinstance(parsed, IPv6Address) and parsed.ipv4_mapped:
            parsed = parsed.ipv4_mapped
        return any(parsed in network for network in self.networks)


def client_address(scope: Scope) -> str:
    """The peer's address; when the peer is a trusted proxy, the right-most address of
    X-Forwarded-For that is not a trusted proxy's (hops further left could be anyone's words)."""
    state = scope.get("state")
    if state is not None and CLIENT in state:
        return state[CLIENT]
    client = scope.get("client")
    address = client[0] if client else "unknown"
    app = scope.get("litestar_app")
    trusted: TrustedProxies | None = app.state.get(TRUSTED_PROXIES) if app is not None else None
    if trusted and trusted.networks and address in trusted:
        hops = [hop.strip() for name, value in scope["headers"] if name == FORWARDED_FOR
                for hop in value.decode("latin-1").split(",") if hop.strip()]
        for hop in reversed(hops):
            address = hop
            if hop not in trusted:
                break
    if state is not None:
        state[CLIENT] = address
    return address


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
