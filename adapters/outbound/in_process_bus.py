"""EventPublisher for the embedded default: topics are in-memory queues in this process."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncGenerator, Sequence

from application.ports import OutgoingMessage


class InProcessEventBus:
    """One queue per topic, shared by everyone who subscribes to it.

    The subscribers of a topic behave like the members of one Kafka consumer group:
    each message goes to exactly one of them, and messages published before anyone
    subscribed wait in the queue, so the relay may start before the worker. With a
    single subscriber per topic (the embedded setup) messages arrive in publish order.

    Unlike Kafka nothing survives the process and nothing is redelivered: a message is
    gone once a subscriber took it. Use it from one event loop.
    """

    def __init__(self) -> None:
        self._queues: defaultdict[str, asyncio.Queue[OutgoingMessage]] = defaultdict(asyncio.Queue)

    async def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        for message in messages:
            self._queues[message.topic].put_nowait(message)

    async def ping(self) -> None:
        """Always reachable: it lives in this process."""

    async def subscribe(self, topic: str) -> AsyncGenerator[OutgoingMessage, None]:
        """The topic's messages, as they come, forever."""
        queue = self._queues[topic]
        while True:
            yield await queue.get()

    def pending(self, topic: str) -> int:
        """How many messages of the topic no subscriber has taken yet."""
        return self._queues[topic].qsize()
