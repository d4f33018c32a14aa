"""An in-memory IdGenerator for tests: ids in a known order, so a test can name the id the
next aggregate will get before it exists."""

from __future__ import annotations

import uuid


class SequentialIdGenerator:
    def __init__(self, start: int = 1) -> None:
        self._next = start

    def new_id(self) -> uuid.UUID:
        value, self._next = self._next, self._next + 1
        return uuid.UUID(int=value)
