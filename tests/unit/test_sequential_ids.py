"""The in-memory IdGenerator: distinct ids in a known order, and it plugs into bootstrap()."""

from __future__ import annotations

import uuid

from adapters.outbound.sequential_ids import SequentialIdGenerator
from application.ports import IdGenerator


def test_ids_come_in_order_and_never_repeat():
    ids: IdGenerator = SequentialIdGenerator(start=41)
    produced = [ids.new_id() for _ in range(3)]
    assert produced == [uuid.UUID(int=41), uuid.UUID(int=42), uuid.UUID(int=43)]
    assert len(set(produced)) == 3
