from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.customers.tables import customer_profiles


async def email_taken(conn: AsyncConnection, tenant_id: uuid.UUID, email_key: str) -> bool:
    taken = await conn.execute(
        select(customer_profiles.c.id).where(
            customer_profiles.c.tenant_id == tenant_id,
            customer_profiles.c.email_key == email_key,
        )
    )
    return taken.first() is not None


async def insert_profile(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(customer_profiles).values(values))


async def customer_id_of(
    conn: AsyncConnection, tenant_id: uuid.UUID, profile_id: str
) -> str | None:
    found = await conn.execute(
        select(customer_profiles.c.customer_id).where(
            customer_profiles.c.tenant_id == tenant_id, customer_profiles.c.id == profile_id
        )
    )
    row = found.first()
    return None if row is None else str(row.customer_id)
