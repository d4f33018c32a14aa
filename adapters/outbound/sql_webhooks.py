"""Webhook endpoints and deliveries in SQL (PostgreSQL or SQLite) through SQLAlchemy Core.

The deliveries table is the notifier's durable retry queue: a claim moves a delivery's
next attempt past a lease with a conditional UPDATE, so two dispatchers never take the same
one, and one that dies mid-attempt leaves it to be taken again when the lease runs out."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    Connection,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    delete,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.engine import Row

from adapters.outbound.sql_catalog import UtcDateTime, create_catalog_engine
from domain.webhooks import FAILED, PENDING, Delivery, WebhookEndpoint

ENDPOINT_FIELDS = ("id", "owner_id", "url", "events", "description", "scope", "created_at", "sealed_secret",
                   "failing_since", "disabled_at", "disabled_reason")
DELIVERY_FIELDS = ("seq", "id", "endpoint_id", "event_type", "video_id", "payload", "created_at", "next_attempt_at",
                   "attempt", "status", "status_code", "error", "delivered_at")


def _define_tables(metadata: MetaData) -> tuple[Table, Table]:
    endpoints = Table(
        "webhook_endpoints", metadata,
        Column("id", Uuid, primary_key=True),
        Column("owner_id", Uuid, nullable=False, index=True),
        Column("url", Text, nullable=False),
        Column("events", JSON, nullable=False),
        Column("description", Text, nullable=False),
        Column("scope", String(8), nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("sealed_secret", Text, nullable=False),
        Column("failing_since", UtcDateTime),
        Column("disabled_at", UtcDateTime),
        Column("disabled_reason", Text),
    )
    deliveries = Table(
        "webhook_deliveries", metadata,
        Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
        Column("id", Uuid, nullable=False, unique=True),
        Column("endpoint_id", Uuid, nullable=False),
        Column("event_type", String(32), nullable=False),
        Column("video_id", Uuid),
        Column("payload", Text, nullable=False),
        Column("created_at", UtcDateTime, nullable=False),
        Column("next_attempt_at", UtcDateTime),
        Column("attempt", Integer, nullable=False),
        Column("status", String(16), nullable=False),
        Column("status_code", Integer),
        Column("error", Text),
        Column("delivered_at", UtcDateTime),
        Index("webhook_deliveries_due", "status", "next_attempt_at"),
        Index("webhook_deliveries_log", "endpoint_id", "seq"),
    )
    return endpoints, deliveries


class SqlWebhookStore:
    def __init__(self, url: str, *, pool_size: int = 2, max_overflow: int = 8) -> None:
        """postgresql://…[?schema=name] or sqlite:///path."""
        self.engine = create_catalog_engine(url, pool_size=pool_size, max_overflow=max_overflow)
        self.metadata = MetaData()
        self.endpoints, self.deliveries = _define_tables(self.metadata)

    def create_tables(self) -> None:
        with self.engine.begin() as conn:
            self.metadata.create_all(conn)

    def close(self) -> None:
        self.engine.dispose()

    # --- endpoints ---------------------------------------------------------------------------

    def add_endpoint(self, endpoint: WebhookEndpoint) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.endpoints.insert().values({name: getattr(endpoint, name) for name in ENDPOINT_FIELDS}))

    def count_endpoints(self, owner_id: UUID) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                select(func.count()).select_from(self.endpoints).where(self.endpoints.c.owner_id == owner_id)
            ).scalar_one()

    def get_endpoint(self, endpoint_id: UUID) -> WebhookEndpoint | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(self.endpoints).where(self.endpoints.c.id == endpoint_id)).first()
        return _endpoint(row) if row else None

    def list_endpoints(self, owner_id: UUID) -> list[WebhookEndpoint]:
        statement = (select(self.endpoints).where(self.endpoints.c.owner_id == owner_id)
                     .order_by(self.endpoints.c.created_at, self.endpoints.c.id))
        with self.engine.connect() as conn:
            return [_endpoint(row) for row in conn.execute(statement)]

    def delete_endpoint(self, endpoint_id: UUID) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(self.deliveries).where(self.deliveries.c.endpoint_id == endpoint_id))
            conn.execute(delete(self.endpoints).where(self.endpoints.c.id == endpoint_id))

    def endpoints_receiving(self, event_type: str, video_owner_id: UUID | None) -> list[WebhookEndpoint]:
        # At most ten per user and few admins: the event filter runs in Python, the same on both databases.
        owners = self.endpoints.c.scope == "all"
        if video_owner_id is not None:
            owners = owners | (self.endpoints.c.owner_id == video_owner_id)
        statement = select(self.endpoints).where(owners, self.endpoints.c.disabled_at.is_(None))
        with self.engine.connect() as conn:
            found = [_endpoint(row) for row in conn.execute(statement)]
        return [endpoint for endpoint in found if endpoint.receives(event_type, video_owner_id)]

    # --- deliveries ----------------------------------------------------------------------------

    def add_deliveries(self, deliveries: Sequence[Delivery]) -> int:
        if not deliveries:
            return 0
        added = 0
        with self.engine.begin() as conn:
            known = set(conn.execute(
                select(self.deliveries.c.id).where(self.deliveries.c.id.in_([d.id for d in deliveries]))
            ).scalars())
            endpoints = set(conn.execute(
                select(self.endpoints.c.id).where(self.endpoints.c.id.in_({d.endpoint_id for d in deliveries}))
            ).scalars())
            for delivery in deliveries:
                if delivery.id in known or delivery.endpoint_id not in endpoints:
                    continue
                known.add(delivery.id)
                conn.execute(self.deliveries.insert().values(
                    {name: getattr(delivery, name) for name in DELIVERY_FIELDS if name != "seq"}
                ))
                added += 1
        return added

    def claim_due(self, now: datetime, lease_until: datetime, limit: int, busy: Collection[UUID] = ()) -> list[Delivery]:
        d, e = self.deliveries, self.endpoints
        older = d.alias("older")
        older_pending = exists().where(
            older.c.endpoint_id == d.c.endpoint_id, older.c.video_id == d.c.video_id,
            older.c.status == PENDING, older.c.seq < d.c.seq,
        )
        conditions: list[Any] = [d.c.status == PENDING, d.c.next_attempt_at <= now, e.c.disabled_at.is_(None),
                                 ~older_pending]
        if busy:
            conditions.append(d.c.endpoint_id.not_in(list(busy)))
        # Each endpoint's most overdue delivery only, so a backlog at one endpoint never fills
        # the batch and keeps the others waiting.
        rank = func.row_number().over(partition_by=d.c.endpoint_id, order_by=(d.c.next_attempt_at, d.c.seq))
        due = select(d, rank.label("rank")).join(e, e.c.id == d.c.endpoint_id).where(*conditions).subquery()
        statement = (select(*(due.c[name] for name in DELIVERY_FIELDS)).where(due.c.rank == 1)
                     .order_by(due.c.next_attempt_at, due.c.seq).limit(limit))
        with self.engine.begin() as conn:
            candidates = [_delivery(row) for row in conn.execute(statement).all()]
            return [delivery for delivery in candidates if self._claim(conn, delivery, lease_until)]

    def _claim(self, conn: Connection, delivery: Delivery, lease_until: datetime) -> bool:
        d = self.deliveries
        claimed = conn.execute(update(d).where(
            d.c.id == delivery.id, d.c.status == PENDING, d.c.next_attempt_at == delivery.next_attempt_at,
        ).values(next_attempt_at=lease_until))
        return claimed.rowcount == 1

    def record_attempt(self, delivery: Delivery, endpoint: WebhookEndpoint) -> None:
        d, e = self.deliveries, self.endpoints
        with self.engine.begin() as conn:
            conn.execute(update(d).where(d.c.id == delivery.id).values(
                attempt=delivery.attempt, status=delivery.status, status_code=delivery.status_code,
                error=delivery.error, delivered_at=delivery.delivered_at, next_attempt_at=delivery.next_attempt_at,
            ))
            conn.execute(update(e).where(e.c.id == endpoint.id).values(
                failing_since=endpoint.failing_since, disabled_at=endpoint.disabled_at,
                disabled_reason=endpoint.disabled_reason,
            ))
            if endpoint.disabled:
                conn.execute(update(d).where(d.c.endpoint_id == endpoint.id, d.c.status == PENDING).values(
                    status=FAILED, next_attempt_at=None,
                    error=f"the endpoint was disabled: {endpoint.disabled_reason}"[:500],
                ))

    def list_deliveries(self, endpoint_id: UUID, *, before: int | None, limit: int) -> list[Delivery]:
        d = self.deliveries
        conditions: list[Any] = [d.c.endpoint_id == endpoint_id]
        if before is not None:
            conditions.append(d.c.seq < before)
        with self.engine.connect() as conn:
            rows = conn.execute(select(d).where(*conditions).order_by(d.c.seq.desc()).limit(limit)).all()
        return [_delivery(row) for row in rows]

    def prune(self, created_before: datetime) -> int:
        d = self.deliveries
        with self.engine.begin() as conn:
            return conn.execute(delete(d).where(d.c.status != PENDING, d.c.created_at < created_before)).rowcount


def _endpoint(row: Row[Any]) -> WebhookEndpoint:
    values = row._mapping
    return WebhookEndpoint(**{name: values[name] for name in ENDPOINT_FIELDS})


def _delivery(row: Row[Any]) -> Delivery:
    values = row._mapping
    return Delivery(**{name: values[name] for name in DELIVERY_FIELDS})
