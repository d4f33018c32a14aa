"""The S3 and Kafka adapters behind their circuit breakers: SeaweedFS cut away through the
cuttable proxy, and a broker address where nothing listens."""

from __future__ import annotations

from urllib.parse import urlsplit
from uuid import uuid4

import anyio
import pytest

from adapters.outbound.breakers import Breakers, CircuitOpen
from adapters.outbound.guarded import GuardedEventPublisher, GuardedObjectStorage
from adapters.outbound.kafka import BrokerUnavailable, KafkaEventPublisher
from adapters.outbound.object_storage import S3ObjectStorage, StorageUnavailable
from application.bulkheads import Bulkhead
from application.ports import OutgoingMessage
from tests.fixtures.tcp_proxy import TcpProxy
from tests.integration.test_object_storage import closed_port

pytestmark = pytest.mark.anyio


async def test_s3_cut_opens_its_breaker_and_a_later_trial_closes_it(s3_server, s3_bucket):
    proxy = TcpProxy(urlsplit(s3_server.endpoint).port or 80).start()
    breakers = Breakers(failures=1, open_s=1)
    storage = GuardedObjectStorage(
        S3ObjectStorage(f"http://127.0.0.1:{proxy.port}", s3_bucket, prefix=f"test-{uuid4().hex}"),
        breakers["s3"], Bulkhead("object storage", 4, 4),
    )
    try:
        await storage.put_bytes("a", b"x")
        proxy.cut()
        with pytest.raises(StorageUnavailable):
            await storage.head("a")
        assert breakers.states()["s3"] == "open"
        with pytest.raises(CircuitOpen):  # not tried: the store is known to be away
            await storage.head("a")
        proxy.restore()
        await anyio.sleep(1.5)  # past the open period: the next call is a trial
        assert (await storage.head("a")).size == 1
        assert breakers.states()["s3"] == "closed"
    finally:
        proxy.cut()


async def test_an_unreachable_broker_opens_the_kafka_breaker():
    breakers = Breakers(failures=1, open_s=60)
    publisher = GuardedEventPublisher(KafkaEventPublisher(f"127.0.0.1:{closed_port()}", timeout_s=1), breakers["kafka"])
    message = OutgoingMessage(topic="t", key=b"k", value=b"v")
    with pytest.raises(BrokerUnavailable):
        await publisher.publish([message])
    with pytest.raises(CircuitOpen):
        await publisher.publish([message])
    assert breakers.states()["kafka"] == "open"
    await publisher.close()
