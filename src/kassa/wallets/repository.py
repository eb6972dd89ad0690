"""SQL of the wallets domain. ``post_wallet_pg`` is the PostgreSQL hot path: one statement."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Select, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from kassa.ledger.tables import accounts
from kassa.wallets.tables import wallets

_cash = aliased(accounts, name="cash")
_gift = aliased(accounts, name="gift")


def _wallet_view() -> Select[Any]:
    return (
        select(
            wallets,
            _cash.c.balance.label("balance"),
            _cash.c.held.label("held"),
            _gift.c.balance.label("gift_balance"),
        )
        .join(_cash, (_cash.c.wallet_id == wallets.c.id) & (_cash.c.kind == "cash"))
        .join(_gift, (_gift.c.wallet_id == wallets.c.id) & (_gift.c.kind == "gift"))
    )


async def insert_wallet(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(wallets).values(values))


async def get_wallet(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID
) -> Row[Any] | None:
    statement = _wallet_view().where(wallets.c.tenant_id == tenant_id, wallets.c.id == wallet_id)
    row: Row[Any] | None = (await conn.execute(statement)).first()
    return row


async def wallet_exists_for(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, currency: str
) -> bool:
    found = await conn.scalar(
        select(wallets.c.seq).where(
            wallets.c.tenant_id == tenant_id,
            wallets.c.customer_id == customer_id,
            wallets.c.currency == currency,
        )
    )
    return found is not None


async def wallet_seq(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID
) -> int | None:
    seq = await conn.scalar(
        select(wallets.c.seq).where(wallets.c.tenant_id == tenant_id, wallets.c.id == wallet_id)
    )
    return None if seq is None else int(seq)


async def list_wallets(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    customer_id: str | None,
    currency: str | None,
    before_seq: int | None,
    limit: int,
) -> Sequence[Row[Any]]:
    statement = _wallet_view().where(wallets.c.tenant_id == tenant_id)
    if customer_id is not None:
        statement = statement.where(wallets.c.customer_id == customer_id)
    if currency is not None:
        statement = statement.where(wallets.c.currency == currency)
    if before_seq is not None:
        statement = statement.where(wallets.c.seq < before_seq)
    statement = statement.order_by(wallets.c.seq.desc()).limit(limit)
    rows: Sequence[Row[Any]] = (await conn.execute(statement)).all()
    return rows


async def set_status(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    values: dict[str, Any],
) -> None:
    await conn.execute(
        update(wallets)
        .where(wallets.c.tenant_id == tenant_id, wallets.c.id == wallet_id)
        .values(values)
    )


POST_WALLET_SQL = (
    "SELECT o_currency, o_balance_after FROM kassa_post_wallet("
    "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $14)"
)


async def post_wallet_pg(
    pool: asyncpg.Pool,
    *,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    account_kind: str,
    sign: int,
    amount: int,
    currency: str | None,
    counter_kind: str,
    transaction_id: uuid.UUID,
    transaction_kind: str,
    reference: str | None,
    description: str | None,
    metadata: dict[str, str],
    now: datetime,
    refuse_frozen: bool,
) -> tuple[str, int]:
    """One deposit or immediate withdrawal on PostgreSQL, as one prepared statement.

    Raises ``asyncpg.RaiseError`` (sqlstate ``KS4xx``, message = error code) or
    ``asyncpg.UniqueViolationError`` for a repeated reference; the caller maps them.
    """
    row = await pool.fetchrow(
        POST_WALLET_SQL,
        tenant_id,
        wallet_id,
        account_kind,
        sign,
        amount,
        currency,
        counter_kind,
        transaction_id,
        transaction_kind,
        reference,
        description,
        orjson.dumps(metadata).decode(),
        now,
        refuse_frozen,
    )
    assert row is not None
    return row[0], row[1]
