from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.checkouts.tables import checkouts


async def insert_checkout(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(checkouts).values(values))


async def get_checkout(
    conn: AsyncConnection, tenant_id: uuid.UUID | None, checkout_id: uuid.UUID
) -> Row[Any] | None:
    """The session; ``tenant_id`` None only for the hosted page, which checks its secret."""
    statement = select(checkouts).where(checkouts.c.id == checkout_id)
    if tenant_id is not None:
        statement = statement.where(checkouts.c.tenant_id == tenant_id)
    return (await conn.execute(statement)).first()


async def lock_checkout(conn: AsyncConnection, checkout_id: uuid.UUID) -> None:
    """Hold the session's row until the unit of work ends, so that two sends of one form on it
    take turns (on SQLite every write takes its turn anyway)."""
    await conn.execute(
        select(checkouts.c.id).where(checkouts.c.id == checkout_id).with_for_update()
    )


async def due_expiries(conn: AsyncConnection, now: datetime, limit: int) -> Sequence[Row[Any]]:
    """Open sessions past their ``expires_at``, the longest past first."""
    statement = (
        select(checkouts)
        .where(checkouts.c.status == "open", checkouts.c.expires_at <= now)
        .order_by(checkouts.c.expires_at, checkouts.c.id)
        .limit(limit)
    )
    return (await conn.execute(statement)).all()


async def list_checkouts(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    status: str | None,
    customer_id: str | None,
    limit: int,
) -> Sequence[Row[Any]]:
    statement = select(checkouts).where(checkouts.c.tenant_id == tenant_id)
    if status is not None:
        statement = statement.where(checkouts.c.status == status)
    if customer_id is not None:
        statement = statement.where(checkouts.c.customer_id == customer_id)
    statement = statement.order_by(checkouts.c.created_at.desc(), checkouts.c.id.desc())
    return (await conn.execute(statement.limit(limit))).all()


async def finish(
    conn: AsyncConnection,
    checkout_id: uuid.UUID,
    status: str,
    now: datetime,
    payout_id: uuid.UUID | None = None,
    amount: int | None = None,
) -> bool:
    """Close an open session (completed, cancelled or expired); False if it was not open."""
    values: dict[str, Any] = {"status": status, "completed_at": now}
    if payout_id is not None:
        values["payout_id"] = payout_id
        values["amount"] = amount
    result = await conn.execute(
        update(checkouts)
        .where(checkouts.c.id == checkout_id, checkouts.c.status == "open")
        .values(values)
    )
    return result.rowcount == 1
