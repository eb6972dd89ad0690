from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.tables import api_keys, customer_tokens, tenants


async def insert_tenant(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(tenants).values(values))


async def get_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> Row[Any] | None:
    return (await conn.execute(select(tenants).where(tenants.c.id == tenant_id))).first()


async def list_tenants(conn: AsyncConnection) -> Sequence[Row[Any]]:
    return (await conn.execute(select(tenants).order_by(tenants.c.created_at))).all()


async def insert_key(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(api_keys).values(values))


async def key_by_prefix(conn: AsyncConnection, prefix: str) -> Row[Any] | None:
    """The key with its tenant's default currency, time zone and SCA policy."""
    statement = (
        select(api_keys, tenants.c.default_currency, tenants.c.timezone, tenants.c.sca_policy)
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


async def customer_token_by_prefix(conn: AsyncConnection, prefix: str) -> Row[Any] | None:
    """The customer token with its tenant's settings and whether its issuing key is revoked."""
    statement = (
        select(
            customer_tokens,
            tenants.c.default_currency,
            tenants.c.timezone,
            tenants.c.sca_policy,
            api_keys.c.revoked_at.label("key_revoked_at"),
        )
        .join(tenants, tenants.c.id == customer_tokens.c.tenant_id)
        .join(api_keys, api_keys.c.id == customer_tokens.c.key_id)
        .where(customer_tokens.c.prefix == prefix)
    )
    return (await conn.execute(statement)).first()


async def insert_customer_token(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(customer_tokens).values(values))


async def list_customer_tokens(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, now: datetime
) -> Sequence[Row[Any]]:
    """The customer's tokens still in force, newest first."""
    return (
        await conn.execute(
            select(customer_tokens)
            .where(
                customer_tokens.c.tenant_id == tenant_id,
                customer_tokens.c.customer_id == customer_id,
                customer_tokens.c.revoked_at.is_(None),
                customer_tokens.c.expires_at > now,
            )
            .order_by(customer_tokens.c.created_at.desc())
        )
    ).all()


async def revoke_customer_token(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    token_id: uuid.UUID,
    now: datetime,
) -> Row[Any] | None:
    result = await conn.execute(
        update(customer_tokens)
        .where(
            customer_tokens.c.id == token_id,
            customer_tokens.c.tenant_id == tenant_id,
            customer_tokens.c.customer_id == customer_id,
        )
        .values(revoked_at=func.coalesce(customer_tokens.c.revoked_at, now))
        .returning(*customer_tokens.c)
    )
    return result.first()


async def set_checkout_frame_ancestors(
    conn: AsyncConnection, tenant_id: uuid.UUID, origins: list[str]
) -> None:
    await conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id)
        .values(checkout_frame_ancestors=origins or None)
    )


async def set_checkout_added_instruments(
    conn: AsyncConnection, tenant_id: uuid.UUID, policy: str
) -> None:
    """How instruments added on the hosted page are marked; ``unverified`` is stored as NULL,
    the column's default."""
    await conn.execute(
        update(tenants)
        .where(tenants.c.id == tenant_id)
        .values(checkout_added_instruments=None if policy == "unverified" else policy)
    )


async def set_sca_policy(
    conn: AsyncConnection, tenant_id: uuid.UUID, policy: dict[str, Any] | None
) -> None:
    await conn.execute(update(tenants).where(tenants.c.id == tenant_id).values(sca_policy=policy))
