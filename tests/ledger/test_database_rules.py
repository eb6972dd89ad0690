"""Ledger rules the database keeps by itself, whatever code talks to it.

On both backends journal rows refuse UPDATE and DELETE, and the CHECK constraints of wallet
accounts refuse a negative balance or more held than balance. On PostgreSQL a deferred constraint
trigger also refuses, at COMMIT, a journal transaction whose entries do not balance per currency
or that has fewer than two; SQLite has no such trigger, and there ``kassa verify`` is what catches
such a transaction. Every test here writes to a migrated database of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.clock import SystemClock
from kassa.kit.db import Database
from kassa.ledger import repository
from kassa.ledger.tables import accounts, journal_entries, journal_transactions
from kassa.ledger.verify import verify
from kassa.wallets import service as wallets
from kassa.wallets.movements import DEPOSIT
from kassa.wallets.schemas import NewWallet
from tests.helpers import make_tenant, move_money

DEPOSITED = 1000


@dataclass(frozen=True)
class Seeded:
    """A tenant with one wallet that received one deposit."""

    db: Database
    backend: str
    tenant_id: uuid.UUID
    currency: str
    wallet_id: uuid.UUID
    cash_id: int
    funding_id: int
    payouts_id: int
    deposit_seq: int


@pytest.fixture
async def fresh_db(fresh_database_url: str) -> AsyncIterator[Database]:
    database = Database(fresh_database_url)
    await database.open()
    yield database
    await database.close()


@pytest.fixture
async def seeded(fresh_db: Database, backend: str) -> Seeded:
    tenant = await make_tenant(fresh_db)
    now = SystemClock().now()
    async with fresh_db.write() as conn:
        wallet = await wallets.create_wallet(
            conn, tenant.tenant_id, NewWallet(customer_id="cust-1", currency=tenant.currency), now
        )
    deposit = await move_money(fresh_db, DEPOSIT, tenant.tenant_id, wallet.id, DEPOSITED, now)
    async with fresh_db.read() as conn:
        cash = await repository.wallet_account(conn, tenant.tenant_id, wallet.id, "cash")
        assert cash is not None
        funding, payouts = [
            await repository.system_account_id(conn, tenant.tenant_id, tenant.currency, kind)
            for kind in ("funding", "payouts_clearing")
        ]
        row = await repository.get_transaction(conn, tenant.tenant_id, deposit.id)
        assert row is not None
    return Seeded(
        fresh_db,
        backend,
        tenant.tenant_id,
        tenant.currency,
        wallet.id,
        int(cash.id),
        funding,
        payouts,
        int(row.seq),
    )


async def journal_state(conn: AsyncConnection) -> tuple[int, int, int, int]:
    """(transactions, entries, sum of transaction amounts, sum of entry amounts)."""
    t, e = journal_transactions, journal_entries
    row = (
        await conn.execute(
            select(
                select(func.count()).select_from(t).scalar_subquery(),
                select(func.count()).select_from(e).scalar_subquery(),
                select(func.coalesce(func.sum(t.c.amount), 0)).scalar_subquery(),
                select(func.coalesce(func.sum(e.c.amount), 0)).scalar_subquery(),
            )
        )
    ).one()
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


async def read_journal(db: Database) -> tuple[int, int, int, int]:
    async with db.read() as conn:
        return await journal_state(conn)


async def problems(seeded: Seeded) -> list[str]:
    async with seeded.db.read() as conn:
        return (await verify(conn, seeded.tenant_id)).problems


async def insert_by_hand(
    conn: AsyncConnection, seeded: Seeded, entries: list[tuple[int, str, int]]
) -> uuid.UUID:
    """A journal transaction and its entries, written straight into the tables."""
    transaction_id = uuid.uuid4()
    seq = (
        await conn.execute(
            insert(journal_transactions)
            .values(
                id=transaction_id,
                tenant_id=seeded.tenant_id,
                wallet_id=None,
                kind="fee",
                amount=100,
                currency=seeded.currency,
                status="completed",
                metadata={},
                created_at=SystemClock().now(),
            )
            .returning(journal_transactions.c.seq)
        )
    ).scalar_one()
    if entries:
        await conn.execute(
            insert(journal_entries),
            [
                {"transaction_seq": seq, "account_id": account, "currency": cur, "amount": amount}
                for account, cur, amount in entries
            ],
        )
    return transaction_id


async def transaction_exists(db: Database, tenant_id: uuid.UUID, transaction_id: uuid.UUID) -> bool:
    async with db.read() as conn:
        return await repository.get_transaction(conn, tenant_id, transaction_id) is not None


# --- the rules are installed ------------------------------------------------------------------


async def test_the_backends_rules_are_installed(seeded: Seeded) -> None:
    async with seeded.db.read() as conn:
        if seeded.backend == "postgresql":
            found = await conn.scalars(text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
            expected = {
                "journal_transactions_immutable",
                "journal_entries_immutable",
                "journal_transactions_no_truncate",
                "journal_entries_no_truncate",
                "journal_transactions_balanced",
                "journal_entries_balanced",
            }
        else:
            found = await conn.scalars(
                text("SELECT name FROM sqlite_master WHERE type = 'trigger'")
            )
            expected = {
                "journal_transactions_no_update",
                "journal_transactions_no_delete",
                "journal_entries_no_update",
                "journal_entries_no_delete",
            }
        assert set(found) >= expected


# --- journal rows are immutable ---------------------------------------------------------------

CHANGES = {
    "update transaction amount": (
        "UPDATE journal_transactions SET amount = amount + 1 WHERE seq = :seq"
    ),
    "update transaction description": (
        "UPDATE journal_transactions SET description = 'edited' WHERE seq = :seq"
    ),
    "update entry amount": (
        "UPDATE journal_entries SET amount = amount * 2 WHERE transaction_seq = :seq"
    ),
    "update entry account": (
        "UPDATE journal_entries SET account_id = account_id WHERE transaction_seq = :seq"
    ),
    "delete entries": "DELETE FROM journal_entries WHERE transaction_seq = :seq",
    "delete transaction": "DELETE FROM journal_transactions WHERE seq = :seq",
    "delete entries from a seq on": "DELETE FROM journal_entries WHERE transaction_seq >= :seq",
    "delete transactions from a seq on": "DELETE FROM journal_transactions WHERE seq >= :seq",
}


@pytest.mark.parametrize("change", list(CHANGES))
async def test_journal_rows_refuse_update_and_delete(seeded: Seeded, change: str) -> None:
    before = await read_journal(seeded.db)
    with pytest.raises(DBAPIError) as raised:
        async with seeded.db.write() as conn:
            await conn.execute(text(CHANGES[change]), {"seq": seeded.deposit_seq})
    assert "immutable" in str(raised.value)
    assert await read_journal(seeded.db) == before
    assert await problems(seeded) == []


@pytest.mark.parametrize("table", ["journal_transactions", "journal_entries"])
async def test_journal_tables_cannot_be_emptied(seeded: Seeded, table: str) -> None:
    # PostgreSQL's TRUNCATE skips row triggers, so it has a statement trigger of its own; on
    # SQLite an unqualified DELETE is the truncate, and the row trigger must still fire.
    statement = (
        f"TRUNCATE {table} CASCADE" if seeded.backend == "postgresql" else f"DELETE FROM {table}"
    )
    before = await read_journal(seeded.db)
    with pytest.raises(DBAPIError) as raised:
        async with seeded.db.write() as conn:
            await conn.execute(text(statement))
    assert "immutable" in str(raised.value)
    assert await read_journal(seeded.db) == before


# --- transactions must balance ----------------------------------------------------------------


def unbalanced_cases(seeded: Seeded) -> dict[str, list[tuple[int, str, int]]]:
    c = seeded.currency
    return {
        "sums to +1": [(seeded.funding_id, c, -100), (seeded.payouts_id, c, 101)],
        "single entry": [(seeded.payouts_id, c, 100)],
        "no entries": [],
        "balanced across currencies only": [
            (seeded.funding_id, c, -100),
            (seeded.payouts_id, "USD" if c != "USD" else "EUR", 100),
        ],
    }


REFUSAL = {
    "sums to +1": "entries sum to 1",
    "single entry": "entries sum to 100",
    "no entries": "has 0 entries; at least two are needed",
    "balanced across currencies only": "is unbalanced",
}


async def write_until_commit(
    seeded: Seeded, entries: list[tuple[int, str, int]], written: list[uuid.UUID]
) -> None:
    """Insert by hand in one unit of work; ``written`` gets the id once only COMMIT is left."""
    async with seeded.db.write() as conn:
        before = await journal_state(conn)
        transaction_id = await insert_by_hand(conn, seeded, entries)
        # Deferred: inside the transaction the rows are there; the check runs at COMMIT.
        after = await journal_state(conn)
        assert after[:2] == (before[0] + 1, before[1] + len(entries))
        written.append(transaction_id)


@pytest.mark.parametrize(
    "case", ["sums to +1", "single entry", "no entries", "balanced across currencies only"]
)
async def test_an_unbalanced_transaction_written_by_hand_is_refused_at_commit(
    seeded: Seeded, case: str
) -> None:
    entries = unbalanced_cases(seeded)[case]
    before = await read_journal(seeded.db)
    if seeded.backend != "postgresql":
        # SQLite keeps no such rule: the rows commit, and kassa verify names the transaction.
        async with seeded.db.write() as conn:
            transaction_id = await insert_by_hand(conn, seeded, entries)
        assert await transaction_exists(seeded.db, seeded.tenant_id, transaction_id)
        found = await problems(seeded)
        assert found
        assert all(str(transaction_id) in problem for problem in found), found
        return

    written: list[uuid.UUID] = []
    with pytest.raises(DBAPIError) as raised:
        await write_until_commit(seeded, entries, written)
    assert len(written) == 1, "refused before COMMIT, not at it"
    transaction_id = written[0]
    message = str(raised.value)
    assert REFUSAL[case] in message, message
    assert await read_journal(seeded.db) == before
    assert not await transaction_exists(seeded.db, seeded.tenant_id, transaction_id)
    assert await problems(seeded) == []


async def test_an_entry_added_later_to_a_committed_transaction_is_refused(seeded: Seeded) -> None:
    before = await read_journal(seeded.db)
    extra = {
        "transaction_seq": seeded.deposit_seq,
        "account_id": seeded.payouts_id,
        "currency": seeded.currency,
        "amount": 1,
    }
    if seeded.backend != "postgresql":
        async with seeded.db.write() as conn:
            await conn.execute(insert(journal_entries).values(extra))
        found = await problems(seeded)
        assert any("unbalanced" in problem for problem in found), found
        return
    with pytest.raises(DBAPIError) as raised:
        async with seeded.db.write() as conn:
            await conn.execute(insert(journal_entries).values(extra))
    assert "unbalanced" in str(raised.value)
    assert await read_journal(seeded.db) == before


async def test_a_balanced_transaction_written_by_hand_commits(seeded: Seeded) -> None:
    before = await read_journal(seeded.db)
    c = seeded.currency
    async with seeded.db.write() as conn:
        transaction_id = await insert_by_hand(
            conn, seeded, [(seeded.funding_id, c, -100), (seeded.payouts_id, c, 100)]
        )
    assert await transaction_exists(seeded.db, seeded.tenant_id, transaction_id)
    assert await read_journal(seeded.db) == (before[0] + 1, before[1] + 2, before[2] + 100, 0)
    async with seeded.db.read() as conn:
        assert await repository.account_entry_sum(conn, seeded.payouts_id) == 100
        assert await repository.account_entry_sum(conn, seeded.funding_id) == -DEPOSITED - 100
    assert await problems(seeded) == []


# --- CHECK constraints of accounts ------------------------------------------------------------


async def cached_accounts(seeded: Seeded) -> set[tuple[int, int | None, int | None]]:
    async with seeded.db.read() as conn:
        rows = await conn.execute(
            select(accounts.c.id, accounts.c.balance, accounts.c.held).where(
                accounts.c.tenant_id == seeded.tenant_id
            )
        )
        return {(int(row.id), row.balance, row.held) for row in rows}


ACCOUNT_CORRUPTIONS = {
    "balance below zero": "UPDATE accounts SET balance = -1 WHERE id = :cash",
    "balance below held": "UPDATE accounts SET held = 10, balance = 9 WHERE id = :cash",
    "held above balance": "UPDATE accounts SET held = balance + 1 WHERE id = :cash",
    "held below zero": "UPDATE accounts SET held = -1 WHERE id = :cash",
    "balance null": "UPDATE accounts SET balance = NULL WHERE id = :cash",
    "system account caches a balance": (
        "UPDATE accounts SET balance = 0, held = 0 WHERE id = :funding"
    ),
}


@pytest.mark.parametrize("corruption", list(ACCOUNT_CORRUPTIONS))
async def test_account_check_constraints_refuse_impossible_balances(
    seeded: Seeded, corruption: str
) -> None:
    before = await cached_accounts(seeded)
    with pytest.raises(IntegrityError):
        async with seeded.db.write() as conn:
            await conn.execute(
                text(ACCOUNT_CORRUPTIONS[corruption]),
                {"cash": seeded.cash_id, "funding": seeded.funding_id},
            )
    assert await cached_accounts(seeded) == before
    assert (seeded.cash_id, DEPOSITED, 0) in before
    assert await problems(seeded) == []


async def test_held_equal_to_balance_is_allowed(seeded: Seeded) -> None:
    """The boundary of the constraint: everything held is legal (verify then flags the cache)."""
    async with seeded.db.write() as conn:
        await conn.execute(
            text("UPDATE accounts SET held = balance WHERE id = :cash"), {"cash": seeded.cash_id}
        )
    found = await problems(seeded)
    assert len(found) == 1
    assert f"caches held {DEPOSITED}" in found[0]
