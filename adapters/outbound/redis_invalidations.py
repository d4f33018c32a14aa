"""What changed, told to every process over one Redis pub/sub channel, so that each can keep a
local copy of hot data (cached playback info, the revocation list) and answer from it without
a round trip.

A local copy is trusted only while the subscription is up: pub/sub does not replay what a
process missed, so every (re)subscription first rebuilds the copies (`resync`), and while the
channel is down, readers go to Redis as before."""

from __future__ import annotations

import logging
import threading
from typing import Protocol

import redis

logger = logging.getLogger("vodhub.invalidations")
RETRY_S = 1.0
POLL_S = 0.5  # how soon close() is noticed


class Listener(Protocol):
    def resync(self) -> None:
        """The channel is (re)subscribed: rebuild or drop the local copy, since messages were missed."""

    def invalidated(self, kind: str, payload: str) -> None:
        """A message of this listener's kind arrived."""


class InvalidationChannel:
    """One subscriber thread per process, started by the first listener."""

    def __init__(self, client: redis.Redis, prefix: str = "vodhub:") -> None:
        self._client = client
        self.channel = f"{prefix}invalidations"
        self._listeners: dict[str, Listener] = {}
        self._live = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def live(self) -> bool:
        """Whether every message published from now on reaches this process's listeners."""
        return self._live

    def message(self, kind: str, payload: str) -> str:
        return f"{kind}:{payload}"

    def listen(self, kind: str, listener: Listener) -> None:
        with self._lock:
            self._listeners[kind] = listener
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="vodhub-invalidations", daemon=True)
                self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=POLL_S + 1)

    def _run(self) -> None:
        failing = False
        while not self._stop.is_set():
            pubsub = self._client.pubsub()
            try:
                pubsub.subscribe(self.channel)
                while not self._stop.is_set():  # subscribed only once Redis confirms it
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is not None and message["type"] == "subscribe":
                        break
                for listener in list(self._listeners.values()):
                    listener.resync()
                self._live, failing = True, False
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=POLL_S)
                    if message is not None and message["type"] == "message":
                        self._dispatch(message["data"])
            except (redis.RedisError, OSError) as error:
                if not failing:
                    logger.warning("invalidation channel down, local copies unused until it is back: %s", error)
                failing = True
            finally:
                self._live = False
                try:
                    pubsub.close()
                except (redis.RedisError, OSError):
                    pass
            self._stop.wait(RETRY_S)

    def _dispatch(self, data: bytes) -> None:
        kind, _, payload = data.decode().partition(":")
        listener = self._listeners.get(kind)
        if listener is not None:
            listener.invalidated(kind, payload)
