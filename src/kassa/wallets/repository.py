"""SQL of the wallets domain: reads, status changes and the dialects' wallet lookup (the money
path's is ``kassa_post_wallets``, see ``batcher``; wallet creation's is
``creation_repository``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import asyncpg
import orjson
from sqlalchemy import Select, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from kassa.kit.db import Backend, Database
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


async def get_wallet(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID
) -> Row[Any] | None:
    statement = _wallet_view().where(wallets.c.tenant_id == tenant_id, wallets.c.id == wallet_id)
    row: Row[Any] | None = (await conn.execute(statement)).first()
    return row


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


# What never changes about one wallet, by id or by customer and currency (the dialects look it
# up on every request):
# on PostgreSQL straight through the asyncpg pool (one round trip, no statement to compile).
_FIND_PG = (
    "SELECT w.id, w.customer_id, w.currency, w.name, w.alias, w.metadata, w.created_at"
    " FROM wallets w WHERE w.tenant_id = $1 AND "
)
_BY_ID_PG = _FIND_PG + "w.id = $2"
_BY_CUSTOMER_PG = _FIND_PG + "w.customer_id = $2 AND w.currency = $3"


class _Record:
    """An asyncpg record read by attribute, as SQLAlchemy rows are."""

    def __init__(self, record: asyncpg.Record) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:
        value = self._record[name]
        if name == "metadata" and isinstance(value, str):
            return orjson.loads(value)
        return value


async def find_wallet(
    db: Database,
    tenant_id: uuid.UUID,
    *,
    wallet_id: uuid.UUID | None = None,
    customer_id: str | None = None,
    currency: str | None = None,
) -> Any:
    """What never changes about a wallet (``kassa.wallets.lookup``), by id or by customer and
    currency; None if the tenant has none."""
    if db.backend is Backend.POSTGRESQL:
        if wallet_id is not None:
            record = await db.pool.fetchrow(_BY_ID_PG, tenant_id, wallet_id)
        else:
            record = await db.pool.fetchrow(_BY_CUSTOMER_PG, tenant_id, customer_id, currency)
        return None if record is None else _Record(record)
    statement = select(
        wallets.c.id,
        wallets.c.customer_id,
        wallets.c.currency,
        wallets.c.name,
        wallets.c.alias,
        wallets.c.metadata,
        wallets.c.created_at,
    ).where(wallets.c.tenant_id == tenant_id)
    if wallet_id is not None:
        statement = statement.where(wallets.c.id == wallet_id)
    else:
        statement = statement.where(
            wallets.c.customer_id == customer_id, wallets.c.currency == currency
        )
    async with db.read() as conn:
        return (await conn.execute(statement)).first()


# --- creating wallets ------------------------------------------------------------------------
# Wallet creation (``service.create_wallets``) writes the wallet, its cash and gift accounts, the
# tenant's system accounts for the currency (if they are not there yet) and the
# ``wallet.created`` event. On PostgreSQL that is one statement for any number of wallets (one
# round trip, no statement to compile); on SQLite, whose writers are serialised, a check and
# three inserts in the caller's ``BEGIN IMMEDIATE`` transaction.
