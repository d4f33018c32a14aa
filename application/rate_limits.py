"""Request rate limits: the limits per route group, their setting's format, and the limiter port."""

from __future__ import annotations

import re
from typing import Protocol

import msgspec

LOGIN, UPLOAD, COMMENT, DEFAULT = "login", "upload", "comment", "default"
LOGIN_FAILURES = "login_failures"  # per account from any address, counted by the login use case
GROUPS = (LOGIN, UPLOAD, COMMENT, DEFAULT, LOGIN_FAILURES)
OFF = "off"

_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"^(\d+)\s*/\s*(\d*)\s*([smhd]?)$")


class Rate(msgspec.Struct, frozen=True):
    """At most `limit` requests per `period_s` seconds, in a burst or spread out."""

    limit: int
    period_s: float

    def __post_init__(self) -> None:
        if self.limit < 1 or self.period_s <= 0:
            raise ValueError(f"a rate needs a positive limit and period, not {self.limit}/{self.period_s:g}")

    def __str__(self) -> str:
        return f"{self.limit}/{self.period_s:g}"


class RateLimits(msgspec.Struct, frozen=True):
    """The rate of each route group; None means that group is not limited."""

    login: Rate | None = Rate(10, 60)
    upload: Rate | None = Rate(30, 3600)
    comment: Rate | None = Rate(20, 60)
    default: Rate | None = Rate(1200, 60)
    login_failures: Rate | None = Rate(30, 3600)

    def for_group(self, group: str) -> Rate | None:
        rate: Rate | None = getattr(self, group)
        return rate

    @property
    def enabled(self) -> bool:
        return any(self.for_group(group) for group in GROUPS)


class RateDecision(msgspec.Struct, frozen=True):
    """The outcome of counting one request against a bucket."""

    allowed: bool
    limit: int
    remaining: int
    reset_after_s: float  # until the bucket is full again
    retry_after_s: float = 0.0  # until a refused request would be allowed


class LoginBudget(Protocol):
    """Failed logins allowed per account from any address (password spraying), synchronous
    because the login use case runs in a worker thread."""

    def spend(self, key: str) -> float | None:
        """Count one attempt against key: None if it may go ahead, else seconds until one may."""

    def refund(self, key: str) -> None:
        """Give back the attempt just counted, because the login succeeded."""


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate) -> RateDecision:
        """Count one request against the bucket `key`; allowed if it is within `rate`."""

    async def aclose(self) -> None:
        """Release connections; the limiter may still be used afterwards."""


def parse_rate_limits(text: str) -> RateLimits:
    """Read VODHUB_RATE_LIMITS: empty for the defaults, `off`, or overrides such as
    `login=10/60,login_failures=30/1h,upload=30/1h,default=off` (count/seconds, or a period in s, m, h, d)."""
    text = text.strip()
    if not text:
        return RateLimits()
    if text.lower() == OFF:
        return RateLimits(login=None, upload=None, comment=None, default=None, login_failures=None)
    overrides: dict[str, Rate | None] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        group, sep, value = (piece.strip() for piece in item.partition("="))
        if not sep or group.lower() not in GROUPS:
            raise ValueError(f"rate limit {item!r}: expected GROUP=COUNT/PERIOD with GROUP one of {', '.join(GROUPS)}")
        overrides[group.lower()] = _parse_rate(value)
    return msgspec.structs.replace(RateLimits(), **overrides)


def _parse_rate(value: str) -> Rate | None:
    if value.lower() == OFF:
        return None
    match = _RATE.match(value.lower())
    if not match or not any(match.groups()[1:]):
        raise ValueError(f"rate {value!r}: expected COUNT/SECONDS (60), COUNT/1m, or off")
    count, amount, unit = match.groups()
    return Rate(int(count), int(amount or 1) * _UNITS[unit])
