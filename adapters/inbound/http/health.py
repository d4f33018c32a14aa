"""Liveness and readiness."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping

import anyio
from litestar import Response, get

from adapters.inbound.http.dependencies import BreakerStatesDep, HealthChecksDep
from adapters.inbound.http.problems import problem
from application.errors import Unavailable

HealthChecks = Mapping[str, Callable[[], Awaitable[None]]]
CHECK_TIMEOUT_S = 3.0
logger = logging.getLogger("vodhub.health")


@get("/health/live", tags=["operations"], security=[{}])
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


async def _run_check(name: str, check: Callable[[], Awaitable[None]]) -> str | None:
    """None when healthy. The public answer names the failure's kind only; the details
    (hosts, ports, users) go to the log."""
    try:
        with anyio.fail_after(CHECK_TIMEOUT_S):
            await check()
    except TimeoutError:
        logger.warning("readiness: %s gave no answer within %g s", name, CHECK_TIMEOUT_S)
        return f"no answer within {CHECK_TIMEOUT_S:g} s"
    except Unavailable as error:  # its circuit breaker is open: not even tried
        logger.warning("readiness: %s failing: %s", name, error)
        return "circuit open" if getattr(error, "dependency", None) else "unavailable"
    except Exception as error:  # a readiness probe reports any failure, it never raises
        logger.warning("readiness: %s failing: %s", name, error)
        return "unreachable"
    return None


@get("/health/ready", tags=["operations"], security=[{}])
async def ready(health_checks: HealthChecksDep, breaker_states: BreakerStatesDep) -> Response:
    """Every configured backend answers; 503 names the ones that do not. `breakers` gives each
    dependency's circuit breaker state (closed, open, half-open)."""
    results: dict[str, str | None] = {}

    async def run(name: str, check: Callable[[], Awaitable[None]]) -> None:
        results[name] = await _run_check(name, check)

    async with anyio.create_task_group() as group:
        for name, check in health_checks.items():
            group.start_soon(run, name, check)
    failing = {name: reason for name, reason in results.items() if reason}
    checks = {name: (reason or "ok") for name, reason in sorted(results.items())}
    breakers = dict(breaker_states())
    if failing:
        return problem(503, f"not ready: {', '.join(sorted(failing))} failing", slug="not-ready", checks=checks,
                       breakers=breakers)
    return Response({"status": "ready", "checks": checks, "breakers": breakers})
