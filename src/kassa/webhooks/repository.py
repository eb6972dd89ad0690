"""SQL of webhook endpoints and of each event's deliveries as a tenant sees them.

Every statement on an endpoint names its tenant. The delivery worker's own statements (claims,
leases, attempts) are in ``kassa.webhooks.queue_repository``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events.tables import events
from kassa.webhooks.tables import (
    DELIVERY_CANCELED,
    DELIVERY_PENDING,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)


@dataclass(frozen=True)
class Endpoint:
    """A row of ``webhook_endpoints``."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    url: str
    description: str | None
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None
    format: str
    secret: bytes
    previous_secret: bytes | None
    previous_secret_expires_at: datetime | None
    created_at: datetime
    deleted_at: datetime | None


@dataclass(frozen=True)
class EventRef:
    seq: int
    type: str


@dataclass(frozen=True)
class Delivery:
    """One endpoint's delivery of an event, with the endpoint's URL."""

    seq: int
    endpoint_id: uuid.UUID
    url: str
    status: str
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class Attempt:
    """A row of ``webhook_attempts``."""

    delivery_seq: int
    attempt: int
    started_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None
    succeeded: bool


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(**{name: row._mapping[name] for name in Endpoint.__dataclass_fields__})


def _live(tenant_id: uuid.UUID) -> ColumnElement[bool]:
    return (webhook_endpoints.c.tenant_id == tenant_id) & webhook_endpoints.c.deleted_at.is_(None)


# ---- endpoints -------------------------------------------------------------------------------


async def insert_endpoint(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(webhook_endpoints).values(values))


async def live_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint | None:
    """The tenant's endpoint, unless it was deleted."""
    row = (
        await conn.execute(
            select(webhook_endpoints).where(_live(tenant_id), webhook_endpoints.c.id == endpoint_id)
        )
    ).first()
    return None if row is None else _endpoint(row)


async def list_endpoints(
    conn: AsyncConnection, tenant_id: uuid.UUID, after: Endpoint | None, limit: int
) -> list[Endpoint]:
    """The tenant's live endpoints, newest first, after ``after``; up to ``limit``."""
    statement = select(webhook_endpoints).where(_live(tenant_id))
    if after is not None:
        order = tuple_(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
        statement = statement.where(order < tuple_(after.created_at, after.id))
    rows = await conn.execute(
        statement.order_by(
            webhook_endpoints.c.created_at.desc(), webhook_endpoints.c.id.desc()
        ).limit(limit)
    )
    return [_endpoint(row) for row in rows]


async def enabled_endpoints(
    conn: AsyncConnection, tenant_id: uuid.UUID
) -> list[tuple[uuid.UUID, list[str]]]:
    """The tenant's live, enabled endpoints: each one's id and event types."""
    rows = await conn.execute(
        select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
            _live(tenant_id), webhook_endpoints.c.enabled
        )
    )
    return [(row.id, list(row.event_types)) for row in rows]


async def update_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.tenant_id == tenant_id, webhook_endpoints.c.id == endpoint_id)
        .values(**values)
    )


async def disable_gone(
    conn: AsyncConnection, endpoint_id: uuid.UUID, url: str, reason: str, now: datetime
) -> None:
    """Disable an endpoint whose receiver said it is gone for good, and cancel its pending
    deliveries; not if it was pointed elsewhere meanwhile (that URL may live)."""
    disabled = await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id, webhook_endpoints.c.url == url)
        .values(enabled=False, disabled_reason=reason)
    )
    if disabled.rowcount:
        await cancel_pending(conn, endpoint_id, now)


# ---- deliveries ------------------------------------------------------------------------------


async def cancel_pending(
    conn: AsyncConnection,
    endpoint_id: uuid.UUID,
    now: datetime,
    *,
    unless_types: list[str] | None = None,
) -> None:
    """Cancel the endpoint's pending deliveries (only those of events whose type is not in
    ``unless_types``, when given)."""
    only: list[ColumnElement[bool]] = []
    if unless_types is not None:
        unwanted = (
            select(events.c.seq)
            .where(
                events.c.seq == webhook_deliveries.c.event_seq,
                events.c.type.not_in(unless_types),
            )
            .exists()
        )
        only.append(unwanted)
    await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.endpoint_id == endpoint_id,
            webhook_deliveries.c.status == DELIVERY_PENDING,
            *only,
        )
        .values(status=DELIVERY_CANCELED, next_attempt_at=None, updated_at=now)
    )


async def event_ref(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> EventRef | None:
    row = (
        await conn.execute(
            select(events.c.seq, events.c.type).where(
                events.c.tenant_id == tenant_id, events.c.id == event_id
            )
        )
    ).first()
    return None if row is None else EventRef(row.seq, row.type)


async def deliveries_of(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_seq: int
) -> list[Delivery]:
    """Each endpoint's delivery of the event, oldest first."""
    rows = await conn.execute(
        select(
            webhook_deliveries.c.seq,
            webhook_deliveries.c.endpoint_id,
            webhook_endpoints.c.url,
            webhook_deliveries.c.status,
            webhook_deliveries.c.next_attempt_at,
        )
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .where(
            webhook_deliveries.c.tenant_id == tenant_id,
            webhook_deliveries.c.event_seq == event_seq,
        )
        .order_by(webhook_deliveries.c.seq)
    )
    return [Delivery(*row) for row in rows]


async def attempts_of(conn: AsyncConnection, delivery_seqs: list[int]) -> list[Attempt]:
    """Every attempt at these deliveries, by delivery and attempt number."""
    if not delivery_seqs:
        return []
    rows = await conn.execute(
        select(
            webhook_attempts.c.delivery_seq,
            webhook_attempts.c.attempt,
            webhook_attempts.c.started_at,
            webhook_attempts.c.status_code,
            webhook_attempts.c.error,
            webhook_attempts.c.latency_ms,
            webhook_attempts.c.response_excerpt,
            webhook_attempts.c.succeeded,
        )
        .where(webhook_attempts.c.delivery_seq.in_(delivery_seqs))
        .order_by(webhook_attempts.c.delivery_seq, webhook_attempts.c.attempt)
    )
    return [Attempt(*row) for row in rows]


async def start_round(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    event_seq: int,
    endpoint_id: uuid.UUID,
    now: datetime,
) -> None:
    """Make the event's delivery to the endpoint due now with a fresh round of retries (its
    attempts so far stay counted), or a new delivery if it has none."""
    changed = await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.event_seq == event_seq,
            webhook_deliveries.c.endpoint_id == endpoint_id,
        )
        .values(
            status=DELIVERY_PENDING,
            round_start=webhook_deliveries.c.attempts,
            next_attempt_at=now,
            updated_at=now,
        )
    )
    if not changed.rowcount:
        await conn.execute(
            insert(webhook_deliveries).values(
                tenant_id=tenant_id,
                event_seq=event_seq,
                endpoint_id=endpoint_id,
                status=DELIVERY_PENDING,
                attempts=0,
                round_start=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
