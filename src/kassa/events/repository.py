"""SQL of the events outbox (removing old events: ``kassa.webhooks.retention``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events.tables import events


@dataclass(frozen=True)
class Event:
    seq: int
    id: uuid.UUID
    type: str
    created_at: datetime
    data: dict[str, Any]


_COLUMNS = (events.c.seq, events.c.id, events.c.type, events.c.created_at, events.c.data)


async def insert_event(
    conn: AsyncConnection,
    event_id: uuid.UUID,
    tenant_id: uuid.UUID,
    type_: str,
    data: dict[str, Any],
    now: datetime,
) -> None:
    await conn.execute(
        insert(events).values(
            id=event_id, tenant_id=tenant_id, type=type_, data=data, created_at=now
        )
    )


async def get_event(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> Event | None:
    row = (
        await conn.execute(
            select(*_COLUMNS).where(events.c.tenant_id == tenant_id, events.c.id == event_id)
        )
    ).first()
    return None if row is None else Event(*row)


async def event_seq(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> int | None:
    """Where the tenant's event stands in the outbox (its ``seq``), if it is there."""
    seq = await conn.scalar(
        select(events.c.seq).where(events.c.tenant_id == tenant_id, events.c.id == event_id)
    )
    return None if seq is None else int(seq)


async def list_events(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    type_: str | None,
    before_seq: int | None,
    limit: int,
) -> list[Event]:
    """The tenant's events, newest first, written before ``before_seq``; up to ``limit``."""
    statement = select(*_COLUMNS).where(events.c.tenant_id == tenant_id)
    if type_ is not None:
        statement = statement.where(events.c.type == type_)
    if before_seq is not None:
        statement = statement.where(events.c.seq < before_seq)
    rows = await conn.execute(statement.order_by(events.c.seq.desc()).limit(limit))
    return [Event(*row) for row in rows]
