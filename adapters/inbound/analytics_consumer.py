"""Drives the analytics use case from `video-viewed-events`: batches of messages, each batch
counted in one read-model transaction with its offsets (exactly once), and only then
committed to the broker. A commit lost to a crash or a rebalance only means a redelivery,
which the recorded offsets skip."""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import CommitFailedError, KafkaError
from anyio import to_thread

from adapters.outbound.in_process_bus import InProcessEventBus
from adapters.outbound.kafka_security import PLAINTEXT, KafkaSecurity
from application.analytics import Analytics, Position

logger = logging.getLogger("vodhub.analytics")

GROUP = "analytics"


class KafkaViewsConsumer:
    def __init__(
        self, bootstrap_servers: str, topic: str, analytics: Analytics, *, group_id: str = GROUP,
        batch_size: int = 2000, session_timeout_ms: int = 10_000, retry_s: float = 1.0,
        security: KafkaSecurity = PLAINTEXT,
    ) -> None:
        self.topic = topic
        self.analytics = analytics
        self.batch_size = batch_size
        self.retry_s = retry_s
        self.counted = 0  # views counted by this consumer
        self.handled = 0  # messages it handled, redelivered and skipped ones included
        self._settings = dict(
            bootstrap_servers=bootstrap_servers, group_id=group_id, client_id="vodhub-analytics",
            enable_auto_commit=False, auto_offset_reset="earliest", session_timeout_ms=session_timeout_ms,
            heartbeat_interval_ms=max(100, session_timeout_ms // 10), **security.client_options(),
        )

    async def run(self) -> None:
        """Consume until cancelled."""
        consumer = AIOKafkaConsumer(self.topic, **self._settings)
        await consumer.start()
        try:
            while True:
                polled = await consumer.getmany(timeout_ms=1000, max_records=self.batch_size)
                messages = [(Position(record.topic, record.partition, record.offset), record.value or b"")
                            for records in polled.values() for record in records]
                if not messages:
                    continue
                await self._record(messages)
                try:
                    await consumer.commit({partition: records[-1].offset + 1 for partition, records in polled.items()})
                except (CommitFailedError, KafkaError) as error:
                    logger.info("offsets not committed (%s); a redelivery will be skipped", error)
        finally:
            await consumer.stop()

    async def _record(self, messages: list[tuple[Position, bytes]]) -> None:
        """Until the read model took the batch: it must not be skipped, and it cannot be half applied."""
        while True:
            try:
                self.counted += await to_thread.run_sync(self.analytics.record, messages)
                self.handled += len(messages)
                return
            except Exception:
                logger.exception("could not record %d views; retrying", len(messages))
                await asyncio.sleep(self.retry_s)


class InProcessViewsConsumer:
    """The embedded default: the same use case on the in-process bus (offsets count messages taken)."""

    def __init__(self, bus: InProcessEventBus, topic: str, analytics: Analytics, batch_size: int = 2000) -> None:
        self.bus = bus
        self.topic = topic
        self.analytics = analytics
        self.batch_size = batch_size
        self.counted = 0
        self._offset = 0

    async def run(self) -> None:
        async with aclosing(self.bus.subscribe(self.topic)) as subscription:
            async for message in subscription:
                batch = [message]
                while len(batch) < self.batch_size and self.bus.pending(self.topic):
                    batch.append(await anext(subscription))
                positions = [(Position(self.topic, 0, self._offset + n), item.value) for n, item in enumerate(batch)]
                self._offset += len(batch)
                while True:
                    try:
                        self.counted += await to_thread.run_sync(self.analytics.record, positions)
                        break
                    except Exception:
                        logger.exception("could not record %d views; retrying", len(batch))
                        await asyncio.sleep(1.0)
