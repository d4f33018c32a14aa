"""The rate-limit setting's format and GCRA on the in-memory limiter, with a hand-moved clock."""

from __future__ import annotations

import pytest

from adapters.outbound.rate_limiter import InMemoryRateLimiter
from application.rate_limits import Rate, RateLimits, parse_rate_limits


class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def limiter(ticks) -> InMemoryRateLimiter:
    return InMemoryRateLimiter(now=ticks)


# --- the setting --------------------------------------------------------------------


def test_unset_means_the_api_defaults():
    limits = parse_rate_limits("")
    assert (limits.login, limits.upload, limits.default) == (Rate(10, 60), Rate(30, 3600), Rate(1200, 60))
    assert limits == RateLimits() and limits.enabled


def test_off_disables_every_group():
    assert not parse_rate_limits(" OFF ").enabled


def test_overrides_keep_the_other_defaults_and_accept_units():
    limits = parse_rate_limits("login=5/30, upload = 2/1h ,default=off")
    assert (limits.login, limits.upload, limits.default) == (Rate(5, 30), Rate(2, 3600), None)
    assert parse_rate_limits("default=100/m").default == Rate(100, 60)


@pytest.mark.parametrize("text", [
    "login", "reads=5/60", "login=5", "login=five/60", "login=0/60", "login=5/0", "login=5/",
])
def test_a_bad_setting_is_refused_with_a_reason(text):
    with pytest.raises(ValueError):
        parse_rate_limits(text)


# --- GCRA -------------------------------------------------------------------------------


def test_a_full_bucket_allows_a_burst_of_limit_then_refuses(limiter):
    rate = Rate(3, 60)
    decisions = [limiter.hit_sync("k", rate) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert [d.remaining for d in decisions] == [2, 1, 0, 0]
    assert decisions[-1].retry_after_s == pytest.approx(20) and decisions[-1].reset_after_s == pytest.approx(60)


def test_one_request_comes_back_every_period_over_limit(limiter, ticks):
    rate = Rate(3, 60)
    for _ in range(3):
        limiter.hit_sync("k", rate)
    ticks.now += 19.9
    assert not limiter.hit_sync("k", rate).allowed
    ticks.now += 0.1
    assert limiter.hit_sync("k", rate).allowed
    assert not limiter.hit_sync("k", rate).allowed
    ticks.now += 60
    assert limiter.hit_sync("k", rate).remaining == 2


def test_buckets_are_independent(limiter):
    rate = Rate(1, 60)
    assert limiter.hit_sync("alice", rate).allowed and limiter.hit_sync("bob", rate).allowed
    assert not limiter.hit_sync("alice", rate).allowed


def test_full_buckets_are_forgotten_so_memory_stays_bounded(limiter, ticks):
    for n in range(100):
        limiter.hit_sync(f"caller-{n}", Rate(10, 1))
    ticks.now += 120
    limiter.hit_sync("latest", Rate(10, 1))
    assert list(limiter._tats) == ["latest"]


@pytest.mark.parametrize("now", [260321.0038515684, 64806.37056105554, 130416.14719811412])
def test_a_limit_of_one_allows_the_first_request_whatever_the_clock_reads(ticks, limiter, now):
    ticks.now = now  # clock readings where (now + 3600) - 3600 > now in floating point
    assert limiter.hit_sync("k", Rate(1, 3600)).allowed
    assert not limiter.hit_sync("k", Rate(1, 3600)).allowed
