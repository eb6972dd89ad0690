from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, or_, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.sca.tables import sca_authenticators, sca_events

TOTP = "TOTP"


async def authenticator(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str
) -> Row[Any] | None:
    statement = select(sca_authenticators).where(
        sca_authenticators.c.tenant_id == tenant_id,
        sca_authenticators.c.customer_id == customer_id,
        sca_authenticators.c.method == TOTP,
    )
    return (await conn.execute(statement)).first()


async def put_pending_authenticator(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """A new pending authenticator, replacing a pending one (never an active one)."""
    await conn.execute(
        delete(sca_authenticators).where(
            sca_authenticators.c.tenant_id == values["tenant_id"],
            sca_authenticators.c.customer_id == values["customer_id"],
            sca_authenticators.c.method == TOTP,
            sca_authenticators.c.status == "pending",
        )
    )
    await conn.execute(insert(sca_authenticators).values(method=TOTP, **values))


async def accept_step(
    conn: AsyncConnection, authenticator_id: uuid.UUID, step: int, *, activate_at: datetime | None
) -> bool:
    """Record ``step`` as used, if it is later than the last one used: False for a replay
    (checked and set in one statement, so two requests cannot both use one code)."""
    values: dict[str, Any] = {"last_step": step}
    if activate_at is not None:
        values |= {"status": "active", "activated_at": activate_at}
    result = await conn.execute(
        update(sca_authenticators)
        .where(
            sca_authenticators.c.id == authenticator_id,
            or_(sca_authenticators.c.last_step.is_(None), sca_authenticators.c.last_step < step),
        )
        .values(values)
    )
    return result.rowcount == 1


async def remove_authenticator(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str
) -> bool:
    result = await conn.execute(
        delete(sca_authenticators).where(
            sca_authenticators.c.tenant_id == tenant_id,
            sca_authenticators.c.customer_id == customer_id,
            sca_authenticators.c.method == TOTP,
        )
    )
    return result.rowcount > 0


async def events_of(
    conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID
) -> list[Row[Any]]:
    """The payout's SCA events, newest first."""
    statement = (
        select(sca_events)
        .where(sca_events.c.tenant_id == tenant_id, sca_events.c.payout_id == payout_id)
        .order_by(sca_events.c.created_at.desc())
    )
    return list((await conn.execute(statement)).all())


async def event(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    statement = select(sca_events).where(
        sca_events.c.tenant_id == tenant_id, sca_events.c.id == event_id
    )
    if lock:
        statement = statement.with_for_update()
    return (await conn.execute(statement)).first()


async def insert_event(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    result = await conn.execute(insert(sca_events).values(values).returning(*sca_events.c))
    return result.one()


async def update_event(conn: AsyncConnection, event_id: uuid.UUID, **values: Any) -> Row[Any]:
    result = await conn.execute(
        update(sca_events)
        .where(sca_events.c.id == event_id)
        .values(values)
        .returning(*sca_events.c)
    )
    return result.one()
