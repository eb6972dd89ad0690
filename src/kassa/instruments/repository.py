"""SQL of payment instruments, and of each tenant's fingerprint key."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.tables import tenants
from kassa.instruments.tables import payment_instruments


@dataclass(frozen=True)
class Instrument:
    """A row of ``payment_instruments``."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    customer_id: str
    type: str
    status: str
    holder_name: str
    display: str
    last4: str
    details: dict[str, Any]
    created_at: datetime
    verified_at: datetime | None
    deleted_at: datetime | None
    fingerprint: str | None


def _instrument(row: Any) -> Instrument:
    return Instrument(**{name: row._mapping[name] for name in Instrument.__dataclass_fields__})


def _live(tenant_id: uuid.UUID, customer_id: str) -> ColumnElement[bool]:
    return (
        (payment_instruments.c.tenant_id == tenant_id)
        & (payment_instruments.c.customer_id == customer_id)
        & payment_instruments.c.deleted_at.is_(None)
    )


async def insert_instrument(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(payment_instruments).values(values))


async def live_instrument(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, instrument_id: uuid.UUID
) -> Instrument | None:
    """The customer's instrument, unless it was deleted."""
    row = (
        await conn.execute(
            select(payment_instruments).where(
                _live(tenant_id, customer_id), payment_instruments.c.id == instrument_id
            )
        )
    ).first()
    return None if row is None else _instrument(row)


async def live_with_fingerprint(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    type_: str,
    fingerprint: str,
) -> list[Instrument]:
    """The customer's live instruments of this type and number (by its fingerprint)."""
    rows = await conn.execute(
        select(payment_instruments)
        .where(
            _live(tenant_id, customer_id),
            payment_instruments.c.type == type_,
            payment_instruments.c.fingerprint == fingerprint,
        )
        .order_by(payment_instruments.c.created_at)
    )
    return [_instrument(row) for row in rows]


async def find_instrument(
    conn: AsyncConnection, tenant_id: uuid.UUID, instrument_id: uuid.UUID
) -> Instrument | None:
    """Any live instrument of the tenant, whichever its customer."""
    row = (
        await conn.execute(
            select(payment_instruments).where(
                payment_instruments.c.tenant_id == tenant_id,
                payment_instruments.c.id == instrument_id,
                payment_instruments.c.deleted_at.is_(None),
            )
        )
    ).first()
    return None if row is None else _instrument(row)


async def list_instruments(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, limit: int
) -> list[Instrument]:
    """The customer's live instruments, newest first; up to ``limit``."""
    rows = await conn.execute(
        select(payment_instruments)
        .where(_live(tenant_id, customer_id))
        .order_by(payment_instruments.c.created_at.desc(), payment_instruments.c.id.desc())
        .limit(limit)
    )
    return [_instrument(row) for row in rows]


async def update_instrument(
    conn: AsyncConnection, tenant_id: uuid.UUID, instrument_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await conn.execute(
        update(payment_instruments)
        .where(
            payment_instruments.c.tenant_id == tenant_id,
            payment_instruments.c.id == instrument_id,
        )
        .values(**values)
    )


async def fingerprint_key(conn: AsyncConnection, tenant_id: uuid.UUID) -> bytes | None:
    """The tenant's fingerprint key as stored (sealed), if it has one yet."""
    sealed: bytes | None = await conn.scalar(
        select(tenants.c.fingerprint_key).where(tenants.c.id == tenant_id)
    )
    return sealed


async def set_fingerprint_key(conn: AsyncConnection, tenant_id: uuid.UUID, sealed: bytes) -> None:
    """Store the tenant's fingerprint key, unless it has one already (the row stays locked
    until the transaction ends, so of two requests making it at once one sets it)."""
    await conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id, tenants.c.fingerprint_key.is_(None))
        .values(fingerprint_key=sealed)
    )


async def instrument_types(
    conn: AsyncConnection, tenant_id: uuid.UUID, instrument_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The type of each of the tenant's instruments named, deleted ones too (a payout keeps
    the instrument it was made with)."""
    if not instrument_ids:
        return {}
    rows = await conn.execute(
        select(payment_instruments.c.id, payment_instruments.c.type).where(
            payment_instruments.c.tenant_id == tenant_id,
            payment_instruments.c.id.in_(instrument_ids),
        )
    )
    return {row.id: row.type for row in rows}
