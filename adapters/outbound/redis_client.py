"""One way to connect to Redis: short timeouts and a single quick retry, so a Redis outage
costs a request milliseconds, not the client library's default seconds of backoff."""

from __future__ import annotations

import redis
from redis.backoff import ConstantBackoff
from redis.retry import Retry


def connect(url: str, timeout_s: float = 1.0) -> redis.Redis:
    return redis.Redis.from_url(
        url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s,
        retry=Retry(ConstantBackoff(0.05), retries=1), health_check_interval=30,
    )
