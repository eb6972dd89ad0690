"""Writing events into the outbox, and reading them back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events.schemas import EventOut
from kassa.events.tables import events
from kassa.kit.errors import NotFound
from kassa.kit.pagination import Page, split_page


async def record(
    conn: AsyncConnection, tenant_id: uuid.UUID, type_: str, obj: BaseModel, now: datetime
) -> uuid.UUID:
    """Write one event in the caller's transaction: it commits or rolls back with the change."""
    event_id = uuid.uuid4()
    data: dict[str, Any] = obj.model_dump(mode="json")
    await conn.execute(
        insert(events).values(
            id=event_id, tenant_id=tenant_id, type=type_, data=data, created_at=now
        )
    )
    return event_id


async def list_events(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    type_: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
) -> Page[EventOut]:
    statement = select(events).where(events.c.tenant_id == tenant_id)
    if type_ is not None:
        statement = statement.where(events.c.type == type_)
    if starting_after is not None:
        after = await conn.scalar(
            select(events.c.seq).where(
                events.c.tenant_id == tenant_id, events.c.id == starting_after
            )
        )
        if after is None:
            raise NotFound(f"event {starting_after} not found")
        statement = statement.where(events.c.seq < after)
    rows = (await conn.execute(statement.order_by(events.c.seq.desc()).limit(limit + 1))).all()
    page, has_more = split_page(list(rows), limit)
    return Page[EventOut](data=[EventOut.from_row(row) for row in page], has_more=has_more)


async def get_event(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> EventOut:
    row = (
        await conn.execute(
            select(events).where(events.c.tenant_id == tenant_id, events.c.id == event_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"event {event_id} not found")
    return EventOut.from_row(row)
