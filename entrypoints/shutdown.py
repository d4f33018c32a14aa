"""Graceful shutdown of the processes without HTTP (relay, worker, projector's peers): on
SIGTERM or SIGINT, stop taking work, finish what is in hand within the grace period, then
exit. (The api's is uvicorn's: it stops accepting and lets in-flight requests finish.)"""

from __future__ import annotations

import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import anyio

from adapters.inbound.messaging import InProcessConsumerRunner, KafkaConsumerRunner

logger = logging.getLogger("vodhub.shutdown")

# A piece of a process: runs until its stop event is set, then finishes what it is doing.
Loop = Callable[[anyio.Event], Coroutine[Any, Any, None]]
SIGNALS = (signal.SIGTERM, signal.SIGINT)
OVERRUN_S = 5.0  # past the grace, what still runs is cancelled; this covers the cancelling


async def run_until_terminated(loops: Sequence[Loop], *, grace_s: float, name: str) -> None:
    """Run the loops until a signal; then set their stop event and wait for them to end."""
    stop = anyio.Event()
    async with anyio.create_task_group() as process:

        async def watch_signals() -> None:
            with anyio.open_signal_receiver(*SIGNALS) as signals:
                async for signum in signals:
                    logger.info("%s: %s: finishing what is in hand (at most %.0f s)", name,
                                signal.Signals(signum).name, grace_s)
                    stop.set()
                    break
            await anyio.sleep(grace_s + OVERRUN_S)
            logger.warning("%s: still busy after the grace period; stopping now", name)
            process.cancel_scope.cancel()

        process.start_soon(watch_signals)
        async with anyio.create_task_group() as work:
            for loop in loops:
                work.start_soon(loop, stop)
        process.cancel_scope.cancel()  # every loop ended: stop watching
    logger.info("%s: stopped", name)


def cancelled_on_stop(run: Callable[[], Awaitable[None]]) -> Loop:
    """A loop for work whose every step is one transaction run in a thread (a database write
    waits for its thread even when cancelled): cancelling it stops it between transactions."""

    async def loop(stop: anyio.Event) -> None:
        async with anyio.create_task_group() as group:

            async def until_done() -> None:
                await run()
                group.cancel_scope.cancel()

            group.start_soon(until_done)
            await stop.wait()
            group.cancel_scope.cancel()

    return loop


def consumer_loop(runner: KafkaConsumerRunner | InProcessConsumerRunner, grace_s: float) -> Loop:
    """A consumer group member: on stop it takes no more messages, finishes or abandons (for
    redelivery) the one in hand, commits what is done and leaves the group."""

    async def loop(stop: anyio.Event) -> None:
        async with anyio.create_task_group() as group:

            async def until_done() -> None:
                await runner.run()
                group.cancel_scope.cancel()

            group.start_soon(until_done)
            await stop.wait()
            await runner.stop(grace_s)

    return loop
