from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.tables import api_keys, tenants


async def insert_tenant(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(tenants).values(values))


async def get_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> Row[Any] | None:
    return (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()


async def list_tenants(conn: AsyncConnection) -> Sequence[Row[Any]]:
    return (await conn.execute(select(tenants).order_by(tenants.c.created_at))).all()


async def insert_key(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(api_keys).values(values))


async def key_by_prefix(conn: AsyncConnection, prefix: str) -> Row[Any] | None:
    """The key with its tenant's default currency and time zone."""
    statement = (
        select(api_keys, tenants.c.default_currency, tenants.c.timezone)
        .join(tenants, tenants.c.id == api_keys.c.tenant_id)
        .where(api_keys.c.prefix == prefix)
    )
    return (await conn.execute(statement)).first()


async def list_keys(conn: AsyncConnection, tenant_id: uuid.UUID) -> Sequence[Row[Any]]:
    return (
        await conn.execute(
            select(api_keys)
            .where(api_keys.c.tenant_id == tenant_id)
            .order_by(api_keys.c.created_at)
        )
    ).all()


async def revoke_key(conn: AsyncConnection, key_id: uuid.UUID, now: datetime) -> Row[Any] | None:
    result = await conn.execute(
        update(api_keys)
        .where(api_keys.c.id == key_id)
        .values(revoked_at=now)
        .returning(*api_keys.c)
    )
    return result.first()
