"""Writing events into the outbox, and reading them back."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import repository
from kassa.events.schemas import EventOut
from kassa.kit.errors import NotFound
from kassa.kit.ids import new_id
from kassa.kit.pagination import Page, split_page


async def record(
    conn: AsyncConnection, tenant_id: uuid.UUID, type_: str, obj: BaseModel, now: datetime
) -> uuid.UUID:
    """Write one event in the caller's transaction: it commits or rolls back with the change."""
    event_id = new_id()
    data: dict[str, Any] = obj.model_dump(mode="json")
    await repository.insert_event(conn, event_id, tenant_id, type_, data, now)
    return event_id


async def list_events(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    type_: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
) -> Page[EventOut]:
    before_seq = None
    if starting_after is not None:
        before_seq = await repository.event_seq(conn, tenant_id, starting_after)
        if before_seq is None:
            raise NotFound(f"event {starting_after} not found")
    found = await repository.list_events(
        conn, tenant_id, type_=type_, before_seq=before_seq, limit=limit + 1
    )
    page, has_more = split_page(found, limit)
    return Page[EventOut](data=[EventOut.from_row(event) for event in page], has_more=has_more)


async def get_event(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> EventOut:
    found = await repository.get_event(conn, tenant_id, event_id)
    if found is None:
        raise NotFound(f"event {event_id} not found")
    return EventOut.from_row(found)
