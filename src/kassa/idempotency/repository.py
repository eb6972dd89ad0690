"""SQL of stored idempotent answers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, insert, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.idempotency.tables import idempotency_keys


@dataclass(frozen=True)
class StoredAnswer:
    fingerprint: str
    status_code: int
    media_type: str
    body: bytes
    sealed: bool
    expires_at: datetime


async def try_lock(conn: AsyncConnection, tenant_id: uuid.UUID, key: str) -> bool:
    """Take the key's transaction-scoped advisory lock on PostgreSQL: False if another
    transaction holds it (SQLite runs one writer at a time: nothing to take there)."""
    if conn.dialect.name != "postgresql":
        return True
    locked = await conn.scalar(
        text("SELECT pg_try_advisory_xact_lock(hashtextextended(:lock, 0))"),
        {"lock": f"idempotency:{tenant_id}:{key}"},
    )
    return bool(locked)


async def stored_answer(
    conn: AsyncConnection, tenant_id: uuid.UUID, key: str
) -> StoredAnswer | None:
    row = (
        await conn.execute(
            select(
                idempotency_keys.c.fingerprint,
                idempotency_keys.c.status_code,
                idempotency_keys.c.media_type,
                idempotency_keys.c.body,
                idempotency_keys.c.sealed,
                idempotency_keys.c.expires_at,
            ).where(idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key)
        )
    ).first()
    return None if row is None else StoredAnswer(*row)


async def delete_answer(conn: AsyncConnection, tenant_id: uuid.UUID, key: str) -> None:
    await conn.execute(
        delete(idempotency_keys).where(
            idempotency_keys.c.tenant_id == tenant_id, idempotency_keys.c.key == key
        )
    )


async def insert_answer(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    key: str,
    answer: StoredAnswer,
    now: datetime,
) -> None:
    await conn.execute(
        insert(idempotency_keys).values(
            tenant_id=tenant_id,
            key=key,
            fingerprint=answer.fingerprint,
            status_code=answer.status_code,
            media_type=answer.media_type,
            body=answer.body,
            sealed=answer.sealed,
            created_at=now,
            expires_at=answer.expires_at,
        )
    )


async def delete_expired(conn: AsyncConnection, now: datetime) -> int:
    """Delete the answers expired at ``now``; how many went."""
    expired = delete(idempotency_keys).where(idempotency_keys.c.expires_at <= now)
    result = await conn.execute(expired)
    return int(result.rowcount or 0)
