"""Circuit breakers: outages open them, answers do not; open means failing at once; a trial
call after the open period closes or reopens them; the state is a metric."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from adapters.outbound.breakers import Breakers, CircuitOpen


class Dependency:
    def __init__(self) -> None:
        self.calls = 0
        self.failing: BaseException | None = ConnectionError("refused")

    def call(self) -> str:
        self.calls += 1
        if self.failing is not None:
            raise self.failing
        return "answer"


def state_metric(dependency: str) -> float | None:
    return REGISTRY.get_sample_value("vodhub_breaker_state", {"dependency": dependency})


def test_consecutive_outages_open_the_breaker_and_then_calls_fail_at_once():
    breakers = Breakers(failures=2, open_s=30)
    server = Dependency()
    guarded = breakers["s3"].guard(server.call)
    for _ in range(2):
        with pytest.raises(ConnectionError):
            guarded()
    with pytest.raises(CircuitOpen) as opened:
        guarded()
    assert server.calls == 2  # the third was not even tried
    assert opened.value.dependency == "s3" and 1 <= opened.value.retry_after_s <= 30
    assert breakers.states()["s3"] == "open" and state_metric("s3") == 1


def test_answers_that_are_not_outages_do_not_count():
    breakers = Breakers(failures=1, open_s=30)
    server = Dependency()
    server.failing = KeyError("no such object")
    for _ in range(3):
        with pytest.raises(KeyError):
            breakers["redis"].guard(server.call)()
    assert breakers.states()["redis"] == "closed" and server.calls == 3


def test_after_the_open_period_a_trial_call_closes_it_again():
    breakers = Breakers(failures=1, open_s=0)
    server = Dependency()
    guarded = breakers["postgresql"].guard(server.call)
    with pytest.raises(ConnectionError):
        guarded()
    assert breakers.states()["postgresql"] == "open"
    with pytest.raises(ConnectionError):  # the trial fails: open again
        guarded()
    assert breakers.states()["postgresql"] == "open"
    server.failing = None
    assert guarded() == "answer"  # the trial succeeds: closed
    assert breakers.states()["postgresql"] == "closed" and state_metric("postgresql") == 0


@pytest.mark.anyio
async def test_the_same_breaker_guards_coroutines():
    breakers = Breakers(failures=1, open_s=30)

    async def publish() -> None:
        raise TimeoutError("no acknowledgement")

    guarded = breakers["kafka"].guard_async(publish)
    with pytest.raises(TimeoutError):
        await guarded()
    with pytest.raises(CircuitOpen):
        await guarded()


def test_a_lock_timeout_is_an_answer_not_an_outage():
    import psycopg.errors
    from eventsourcing.persistence import OperationalError

    breakers = Breakers(failures=1, open_s=30)
    server = Dependency()
    try:
        raise psycopg.errors.LockNotAvailable("lock timeout")
    except psycopg.errors.LockNotAvailable as contention:
        server.failing = OperationalError(str(contention))
        server.failing.__cause__ = contention
    with pytest.raises(OperationalError):
        breakers["postgresql"].guard(server.call)()
    assert breakers.states()["postgresql"] == "closed"
    server.failing = OperationalError("connection refused")
    with pytest.raises(OperationalError):
        breakers["postgresql"].guard(server.call)()
    assert breakers.states()["postgresql"] == "open"
