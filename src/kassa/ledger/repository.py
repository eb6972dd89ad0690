"""All SQL of the ledger that runs through SQLAlchemy Core (everything but the PG hot path)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.ledger.errors import DuplicateReference
from kassa.ledger.tables import (
    SYSTEM_ACCOUNT_KINDS,
    WALLET_ACCOUNT_KINDS,
    accounts,
    holds,
    journal_entries,
    journal_transactions,
)


async def ensure_system_accounts(
    conn: AsyncConnection, tenant_id: uuid.UUID, currency: str, now: datetime
) -> None:
    dialect_insert = postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert
    statement = (
        dialect_insert(accounts)
        .values(
            [
                {"tenant_id": tenant_id, "kind": kind, "currency": currency, "created_at": now}
                for kind in SYSTEM_ACCOUNT_KINDS
            ]
        )
        .on_conflict_do_nothing(
            index_elements=["tenant_id", "currency", "kind"],
            index_where=accounts.c.wallet_id.is_(None),
        )
    )
    await conn.execute(statement)


async def create_wallet_accounts(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    currency: str,
    now: datetime,
) -> None:
    await conn.execute(
        insert(accounts),
        [
            {
                "tenant_id": tenant_id,
                "wallet_id": wallet_id,
                "kind": kind,
                "currency": currency,
                "balance": 0,
                "held": 0,
                "created_at": now,
            }
            for kind in WALLET_ACCOUNT_KINDS
        ],
    )


async def system_account_id(
    conn: AsyncConnection, tenant_id: uuid.UUID, currency: str, kind: str
) -> int:
    account_id = await conn.scalar(
        select(accounts.c.id).where(
            accounts.c.tenant_id == tenant_id,
            accounts.c.currency == currency,
            accounts.c.kind == kind,
            accounts.c.wallet_id.is_(None),
        )
    )
    if account_id is None:
        raise LookupError(f"no {kind} account for tenant {tenant_id} in {currency}")
    return int(account_id)


async def wallet_account(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, kind: str
) -> Row[Any] | None:
    return (
        await conn.execute(
            select(accounts).where(
                accounts.c.tenant_id == tenant_id,
                accounts.c.wallet_id == wallet_id,
                accounts.c.kind == kind,
            )
        )
    ).first()


async def lock_wallet_accounts(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID
) -> Sequence[Row[Any]]:
    """Lock a wallet's accounts (a no-op on SQLite, whose writers are already serialised)."""
    statement = select(accounts).where(
        accounts.c.tenant_id == tenant_id, accounts.c.wallet_id == wallet_id
    )
    if conn.dialect.name == "postgresql":
        statement = statement.order_by(accounts.c.id).with_for_update()
    return (await conn.execute(statement)).all()


async def apply_wallet_leg(
    conn: AsyncConnection, account_id: int, amount: int, release_held: int
) -> int | None:
    """Move a wallet account's cached balance (and release part of its held amount).

    Refuses, by returning None, when the account's available balance afterwards would be
    negative; the CHECK constraints catch anything this condition misses.
    """
    new_balance = accounts.c.balance + amount
    new_held = accounts.c.held - release_held
    result = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, new_balance - new_held >= 0)
        .values(balance=new_balance, held=new_held)
        .returning(accounts.c.balance)
    )
    balance_after = result.scalar()
    return None if balance_after is None else int(balance_after)


async def change_held(conn: AsyncConnection, account_id: int, delta: int) -> bool:
    """Raise (delta > 0) or lower an account's held amount; False if too little is available."""
    result = await conn.execute(
        update(accounts)
        .where(accounts.c.id == account_id, accounts.c.balance - accounts.c.held >= delta)
        .values(held=accounts.c.held + delta)
        .returning(accounts.c.id)
    )
    return result.first() is not None


async def insert_transaction(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Insert a journal transaction; a reference used before raises ``DuplicateReference``.

    With a reference the insert runs in a savepoint, so a concurrent twin that wins the unique
    index leaves this unit of work usable for the error report.
    """
    statement = insert(journal_transactions).values(values).returning(journal_transactions.c.seq)
    reference = values.get("reference")
    if reference is None:
        return int((await conn.execute(statement)).scalar_one())
    try:
        async with conn.begin_nested():
            seq = (await conn.execute(statement)).scalar_one()
    except IntegrityError as error:
        if await reference_exists(conn, values["tenant_id"], reference):
            raise DuplicateReference(
                f"reference {reference!r} was already used by another transaction"
            ) from error
        raise
    return int(seq)


async def reference_exists(conn: AsyncConnection, tenant_id: uuid.UUID, reference: str) -> bool:
    found = await conn.scalar(
        select(journal_transactions.c.seq).where(
            journal_transactions.c.tenant_id == tenant_id,
            journal_transactions.c.reference == reference,
        )
    )
    return found is not None


async def insert_entries(
    conn: AsyncConnection, transaction_seq: int, entries: Sequence[tuple[int, str, int]]
) -> None:
    await conn.execute(
        insert(journal_entries),
        [
            {
                "transaction_seq": transaction_seq,
                "account_id": account_id,
                "currency": currency,
                "amount": amount,
            }
            for account_id, currency, amount in entries
        ],
    )


async def insert_hold(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(holds).values(values))


async def resolve_hold(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    hold_id: uuid.UUID,
    status: str,
    now: datetime,
) -> Row[Any] | None:
    """Move an open hold to its final status; None when it is not open (exactly once)."""
    result = await conn.execute(
        update(holds)
        .where(holds.c.id == hold_id, holds.c.tenant_id == tenant_id, holds.c.status == "open")
        .values(status=status, resolved_at=now)
        .returning(*holds.c)
    )
    return result.first()


async def get_hold(
    conn: AsyncConnection, tenant_id: uuid.UUID, hold_id: uuid.UUID
) -> Row[Any] | None:
    return (
        await conn.execute(
            select(holds).where(holds.c.id == hold_id, holds.c.tenant_id == tenant_id)
        )
    ).first()


async def account_entry_sum(conn: AsyncConnection, account_id: int) -> int:
    total = await conn.scalar(
        select(func.coalesce(func.sum(journal_entries.c.amount), 0)).where(
            and_(journal_entries.c.account_id == account_id)
        )
    )
    return int(total or 0)


async def get_transaction(
    conn: AsyncConnection, tenant_id: uuid.UUID, transaction_id: uuid.UUID
) -> Row[Any] | None:
    return (
        await conn.execute(
            select(journal_transactions).where(
                journal_transactions.c.tenant_id == tenant_id,
                journal_transactions.c.id == transaction_id,
            )
        )
    ).first()


async def list_wallet_transactions(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    *,
    kind: str | None,
    before_seq: int | None,
    limit: int,
) -> Sequence[Row[Any]]:
    statement = select(journal_transactions).where(
        journal_transactions.c.wallet_id == wallet_id,
        journal_transactions.c.tenant_id == tenant_id,
    )
    if kind is not None:
        statement = statement.where(journal_transactions.c.kind == kind)
    if before_seq is not None:
        statement = statement.where(journal_transactions.c.seq < before_seq)
    statement = statement.order_by(journal_transactions.c.seq.desc()).limit(limit)
    return (await conn.execute(statement)).all()
