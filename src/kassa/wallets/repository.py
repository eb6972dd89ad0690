"""SQL of the wallets domain (the PostgreSQL hot path is in ``kassa.wallets.batcher``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

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


async def existing_wallet_for(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, currency: str
) -> Any:
    """The customer's wallet in ``currency`` (its id and status), or None."""
    return (
        await conn.execute(
            select(wallets.c.id, wallets.c.status).where(
                wallets.c.tenant_id == tenant_id,
                wallets.c.customer_id == customer_id,
                wallets.c.currency == currency,
            )
        )
    ).first()


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
