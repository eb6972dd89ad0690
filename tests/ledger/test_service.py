"""kassa.ledger.service against real databases: postings, and holds that leave 'open' once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.clock import SystemClock
from kassa.kit.db import Backend, Database
from kassa.kit.errors import NotFound
from kassa.ledger import repository
from kassa.ledger import service as ledger
from kassa.ledger.errors import HoldNotOpen, InsufficientFunds, UnbalancedTransaction
from kassa.ledger.tables import accounts, holds, journal_entries, journal_transactions
from kassa.ledger.verify import verify
from kassa.wallets import service as wallets
from kassa.wallets.movements import DEPOSIT
from kassa.wallets.schemas import NewWallet
from tests.helpers import TenantKey, make_tenant, move_money

FUNDED = 1000
FEE = 20
ACTIONS = ("capture", "release", "expire")
FINAL_STATUS = {"capture": "captured", "release": "released", "expire": "expired"}


@dataclass(frozen=True)
class Books:
    """One tenant's wallet, funded with FUNDED minor units, and the accounts around it."""

    tenant_id: uuid.UUID
    currency: str
    wallet_id: uuid.UUID
    cash_id: int
    funding_id: int
    payouts_id: int
    fees_id: int


@dataclass(frozen=True)
class Snapshot:
    """Everything of a tenant that a ledger operation could change."""

    balance: int
    held: int
    transactions: int
    entries: int
    holds: frozenset[tuple[uuid.UUID, str, int]]
    system: tuple[int, int, int]


def now_() -> datetime:
    return SystemClock().now()


async def open_wallet(db: Database, tenant_id: uuid.UUID, currency: str, amount: int) -> uuid.UUID:
    async with db.write() as conn:
        wallet = await wallets.create_wallet(
            conn,
            tenant_id,
            NewWallet(customer_id=f"cust-{uuid.uuid4().hex[:8]}", currency=currency),
            now_(),
        )
    if amount:
        await move_money(db, DEPOSIT, tenant_id, wallet.id, amount, now_())
    return wallet.id


async def open_books(db: Database, tenant: TenantKey) -> Books:
    wallet_id = await open_wallet(db, tenant.tenant_id, tenant.currency, FUNDED)
    async with db.read() as conn:
        cash = await repository.wallet_account(conn, tenant.tenant_id, wallet_id, "cash")
        assert cash is not None
        system = [
            await repository.system_account_id(conn, tenant.tenant_id, tenant.currency, kind)
            for kind in ("funding", "payouts_clearing", "fees")
        ]
    return Books(tenant.tenant_id, tenant.currency, wallet_id, int(cash.id), *system)


@pytest.fixture
async def books(db: Database, tenant: TenantKey) -> Books:
    return await open_books(db, tenant)


async def snapshot(conn: AsyncConnection, books: Books) -> Snapshot:
    cash = (
        await conn.execute(
            select(accounts.c.balance, accounts.c.held).where(accounts.c.id == books.cash_id)
        )
    ).one()
    transactions = await conn.scalar(
        select(func.count())
        .select_from(journal_transactions)
        .where(journal_transactions.c.tenant_id == books.tenant_id)
    )
    entries = await conn.scalar(
        select(func.count())
        .select_from(
            journal_entries.join(
                journal_transactions,
                journal_transactions.c.seq == journal_entries.c.transaction_seq,
            )
        )
        .where(journal_transactions.c.tenant_id == books.tenant_id)
    )
    hold_rows = await conn.execute(
        select(holds.c.id, holds.c.status, holds.c.amount).where(
            holds.c.tenant_id == books.tenant_id
        )
    )
    system = [
        await repository.account_entry_sum(conn, account_id)
        for account_id in (books.funding_id, books.payouts_id, books.fees_id)
    ]
    return Snapshot(
        balance=int(cash.balance),
        held=int(cash.held),
        transactions=int(transactions or 0),
        entries=int(entries or 0),
        holds=frozenset((row.id, row.status, int(row.amount)) for row in hold_rows),
        system=(system[0], system[1], system[2]),
    )


async def read_snapshot(db: Database, books: Books) -> Snapshot:
    async with db.read() as conn:
        return await snapshot(conn, books)


async def assert_verified(db: Database, tenant_id: uuid.UUID) -> None:
    async with db.read() as conn:
        report = await verify(conn, tenant_id)
    assert report.problems == []
    assert report.ok


async def place(db: Database, books: Books, amount: int) -> uuid.UUID:
    async with db.write() as conn:
        return await ledger.place_hold(
            conn, ledger.HoldRequest(books.tenant_id, books.wallet_id, amount, now_())
        )


async def resolve(
    conn: AsyncConnection,
    books: Books,
    action: str,
    hold_id: uuid.UUID,
    amount: int,
    tenant_id: uuid.UUID | None = None,
) -> None:
    """Capture (to payouts_clearing, minus a fee to fees), release or expire a hold."""
    tenant_id = books.tenant_id if tenant_id is None else tenant_id
    if action == "capture":
        destinations = [("payouts_clearing", amount - FEE), ("fees", FEE)]
        await ledger.capture_hold(conn, ledger.Capture(tenant_id, hold_id, destinations, now_()))
    elif action == "release":
        await ledger.release_hold(conn, tenant_id, hold_id, now_())
    else:
        assert action == "expire"
        await ledger.expire_hold(conn, tenant_id, hold_id, now_())


async def hold_status(db: Database, books: Books, hold_id: uuid.UUID) -> str | None:
    async with db.read() as conn:
        row = await repository.get_hold(conn, books.tenant_id, hold_id)
    return None if row is None else str(row.status)


def expected_after(action: str, amount: int) -> tuple[int, int, tuple[int, int, int]]:
    """(balance, transactions, system sums) once a hold of ``amount`` was resolved by action."""
    if action == "capture":
        return FUNDED - amount, 2, (-FUNDED, amount - FEE, FEE)
    return FUNDED, 1, (-FUNDED, 0, 0)


# --- post -------------------------------------------------------------------------------------


async def test_post_writes_a_balanced_transaction_and_moves_the_cached_balance(
    db: Database, books: Books
) -> None:
    async with db.write() as conn:
        posted = await ledger.post(
            conn,
            ledger.Posting(
                tenant_id=books.tenant_id,
                kind="deposit",
                amount=250,
                currency=books.currency,
                legs=[
                    ledger.Leg(books.cash_id, 250, wallet=True),
                    ledger.Leg(books.funding_id, -250),
                ],
                created_at=now_(),
                wallet_id=books.wallet_id,
            ),
        )
    assert (posted.balance_before, posted.balance_after) == (FUNDED, FUNDED + 250)
    async with db.read() as conn:
        row = await repository.get_transaction(conn, books.tenant_id, posted.transaction_id)
        assert row is not None
        assert (row.seq, row.kind, row.amount) == (posted.seq, "deposit", 250)
        assert (row.balance_before, row.balance_after) == (FUNDED, FUNDED + 250)
    after = await read_snapshot(db, books)
    assert (after.balance, after.held, after.transactions, after.entries) == (1250, 0, 2, 4)
    assert after.system == (-1250, 0, 0)
    await assert_verified(db, books.tenant_id)


UNBALANCED: dict[str, Callable[[Books], list[ledger.Leg]]] = {
    "off by one": lambda b: [
        ledger.Leg(b.cash_id, 100, wallet=True),
        ledger.Leg(b.funding_id, -99),
    ],
    "one wallet leg": lambda b: [ledger.Leg(b.cash_id, 100, wallet=True)],
    "one leg summing to zero": lambda b: [ledger.Leg(b.funding_id, 0)],
    "no legs": lambda b: [],
    "three legs": lambda b: [
        ledger.Leg(b.funding_id, 100),
        ledger.Leg(b.payouts_id, -100),
        ledger.Leg(b.fees_id, 1),
    ],
}


@pytest.mark.parametrize("shape", list(UNBALANCED))
async def test_post_refuses_unbalanced_legs_and_writes_nothing(
    db: Database, books: Books, shape: str
) -> None:
    before = await read_snapshot(db, books)
    async with db.write() as conn:
        with pytest.raises(UnbalancedTransaction):
            await ledger.post(
                conn,
                ledger.Posting(
                    tenant_id=books.tenant_id,
                    kind="deposit",
                    amount=100,
                    currency=books.currency,
                    legs=UNBALANCED[shape](books),
                    created_at=now_(),
                    wallet_id=books.wallet_id,
                ),
            )
        # Refused before any write, not merely rolled back afterwards.
        assert await snapshot(conn, books) == before
    assert await read_snapshot(db, books) == before
    await assert_verified(db, books.tenant_id)


async def test_post_refuses_an_overdraft_and_writes_nothing(db: Database, books: Books) -> None:
    before = await read_snapshot(db, books)
    with pytest.raises(InsufficientFunds):
        async with db.write() as conn:
            await ledger.post(
                conn,
                ledger.Posting(
                    tenant_id=books.tenant_id,
                    kind="withdrawal",
                    amount=FUNDED + 1,
                    currency=books.currency,
                    legs=[
                        ledger.Leg(books.cash_id, -(FUNDED + 1), wallet=True),
                        ledger.Leg(books.payouts_id, FUNDED + 1),
                    ],
                    created_at=now_(),
                    wallet_id=books.wallet_id,
                ),
            )
    assert await read_snapshot(db, books) == before
    await assert_verified(db, books.tenant_id)


# --- placing holds ----------------------------------------------------------------------------


async def test_place_hold_raises_held_and_lowers_available(db: Database, books: Books) -> None:
    hold_id = await place(db, books, 300)
    async with db.read() as conn:
        wallet = await wallets.get_wallet(conn, books.tenant_id, books.wallet_id, now_())
        hold = await repository.get_hold(conn, books.tenant_id, hold_id)
    assert (wallet.balance, wallet.held_balance, wallet.available_balance) == (FUNDED, 300, 700)
    assert hold is not None
    assert (hold.status, hold.amount, hold.account_id) == ("open", 300, books.cash_id)
    assert (hold.currency, hold.wallet_id, hold.resolved_at) == (
        books.currency,
        books.wallet_id,
        None,
    )
    after = await read_snapshot(db, books)
    assert after.transactions == 1, "a hold posts nothing to the journal"
    await assert_verified(db, books.tenant_id)


async def test_holds_add_up_to_exactly_the_available_balance(db: Database, books: Books) -> None:
    await place(db, books, 600)
    await place(db, books, 400)
    after = await read_snapshot(db, books)
    assert (after.balance, after.held) == (FUNDED, FUNDED)
    await assert_verified(db, books.tenant_id)


@pytest.mark.parametrize(("first", "second"), [(0, FUNDED + 1), (600, 401), (FUNDED, 1)])
async def test_place_hold_refuses_more_than_available_and_writes_nothing(
    db: Database, books: Books, first: int, second: int
) -> None:
    if first:
        await place(db, books, first)
    before = await read_snapshot(db, books)
    refused = uuid.uuid4()
    with pytest.raises(InsufficientFunds):
        async with db.write() as conn:
            await ledger.place_hold(
                conn,
                ledger.HoldRequest(
                    books.tenant_id, books.wallet_id, second, now_(), hold_id=refused
                ),
            )
    assert await read_snapshot(db, books) == before
    assert await hold_status(db, books, refused) is None
    await assert_verified(db, books.tenant_id)


async def test_place_hold_on_a_wallet_of_another_tenant_is_not_found(
    db: Database, books: Books
) -> None:
    other = await make_tenant(db)
    before = await read_snapshot(db, books)
    with pytest.raises(NotFound):
        async with db.write() as conn:
            await ledger.place_hold(
                conn, ledger.HoldRequest(other.tenant_id, books.wallet_id, 10, now_())
            )
    assert await read_snapshot(db, books) == before
    await assert_verified(db, books.tenant_id)
    await assert_verified(db, other.tenant_id)


# --- resolving holds --------------------------------------------------------------------------


async def test_capture_posts_one_journal_transaction_to_the_system_accounts(
    db: Database, books: Books
) -> None:
    hold_id = await place(db, books, 300)
    async with db.write() as conn:
        posted = await ledger.capture_hold(
            conn,
            ledger.Capture(
                books.tenant_id,
                hold_id,
                [("payouts_clearing", 280), ("fees", 20)],
                now_(),
                reference=f"capture-{hold_id}",
            ),
        )
    assert (posted.balance_before, posted.balance_after) == (FUNDED, 700)

    after = await read_snapshot(db, books)
    assert (after.balance, after.held) == (700, 0)
    assert (after.transactions, after.entries) == (2, 5)
    assert after.system == (-FUNDED, 280, 20)
    assert after.holds == frozenset({(hold_id, "captured", 300)})

    async with db.read() as conn:
        row = await repository.get_transaction(conn, books.tenant_id, posted.transaction_id)
        entries = (
            await conn.execute(
                select(journal_entries.c.account_id, journal_entries.c.amount).where(
                    journal_entries.c.transaction_seq == posted.seq
                )
            )
        ).all()
        hold = await repository.get_hold(conn, books.tenant_id, hold_id)
    assert row is not None
    assert (row.kind, row.amount, row.currency) == ("withdrawal", 300, books.currency)
    assert (row.hold_id, row.wallet_id) == (hold_id, books.wallet_id)
    assert (row.balance_before, row.balance_after) == (FUNDED, 700)
    assert sorted((int(a), int(m)) for a, m in entries) == sorted(
        [(books.cash_id, -300), (books.payouts_id, 280), (books.fees_id, 20)]
    )
    assert hold is not None
    assert hold.resolved_at is not None
    await assert_verified(db, books.tenant_id)


@pytest.mark.parametrize("spent", [299, 301])
async def test_capture_must_spend_exactly_the_held_amount(
    db: Database, books: Books, spent: int
) -> None:
    hold_id = await place(db, books, 300)
    before = await read_snapshot(db, books)
    with pytest.raises(UnbalancedTransaction):
        async with db.write() as conn:
            await ledger.capture_hold(
                conn,
                ledger.Capture(books.tenant_id, hold_id, [("payouts_clearing", spent)], now_()),
            )
    assert await read_snapshot(db, books) == before
    assert await hold_status(db, books, hold_id) == "open"
    await assert_verified(db, books.tenant_id)


@pytest.mark.parametrize("action", ["release", "expire"])
async def test_release_and_expire_drop_held_without_moving_balance(
    db: Database, books: Books, action: str
) -> None:
    hold_id = await place(db, books, 300)
    async with db.write() as conn:
        await resolve(conn, books, action, hold_id, 300)
    after = await read_snapshot(db, books)
    assert (after.balance, after.held) == (FUNDED, 0)
    assert (after.transactions, after.entries) == (1, 2)
    assert after.system == (-FUNDED, 0, 0)
    assert after.holds == frozenset({(hold_id, FINAL_STATUS[action], 300)})
    # The released money is available again, to the last minor unit.
    await place(db, books, FUNDED)
    await assert_verified(db, books.tenant_id)


@pytest.mark.parametrize("second", ACTIONS)
@pytest.mark.parametrize("first", ACTIONS)
async def test_a_resolved_hold_cannot_be_resolved_again(
    db: Database, books: Books, first: str, second: str
) -> None:
    hold_id = await place(db, books, 300)
    async with db.write() as conn:
        await resolve(conn, books, first, hold_id, 300)
    before = await read_snapshot(db, books)
    balance, transactions, system = expected_after(first, 300)
    assert (before.balance, before.held, before.transactions, before.system) == (
        balance,
        0,
        transactions,
        system,
    )
    with pytest.raises(HoldNotOpen):
        async with db.write() as conn:
            await resolve(conn, books, second, hold_id, 300)
    assert await read_snapshot(db, books) == before
    assert await hold_status(db, books, hold_id) == FINAL_STATUS[first]
    await assert_verified(db, books.tenant_id)


CONCURRENT_PAIRS = [
    ("capture", "capture"),
    ("release", "release"),
    ("expire", "expire"),
    ("capture", "release"),
    ("capture", "expire"),
    ("release", "expire"),
]


@pytest.mark.parametrize(("first", "second"), CONCURRENT_PAIRS)
async def test_concurrent_resolutions_of_one_hold_happen_exactly_once(
    db: Database, books: Books, first: str, second: str
) -> None:
    """Two units of work race to resolve one hold: one wins, the other finds it not open.

    On PostgreSQL both transactions first see the hold open, then race on its row; on SQLite
    ``BEGIN IMMEDIATE`` queues the second writer behind the first.
    """
    hold_id = await place(db, books, 300)
    both_saw_it_open = asyncio.Barrier(2)

    async def attempt(action: str) -> None:
        async with db.write() as conn:
            if db.backend is Backend.POSTGRESQL:
                hold = await repository.get_hold(conn, books.tenant_id, hold_id)
                assert hold is not None
                assert hold.status == "open"
                await asyncio.wait_for(both_saw_it_open.wait(), timeout=30)
            await resolve(conn, books, action, hold_id, 300)

    results = await asyncio.gather(attempt(first), attempt(second), return_exceptions=True)

    winners = [action for action, r in zip((first, second), results, strict=True) if r is None]
    losers = [r for r in results if r is not None]
    assert len(winners) == 1, results
    assert len(losers) == 1
    assert isinstance(losers[0], HoldNotOpen), repr(losers[0])

    after = await read_snapshot(db, books)
    balance, transactions, system = expected_after(winners[0], 300)
    assert (after.balance, after.held, after.transactions, after.system) == (
        balance,
        0,
        transactions,
        system,
    )
    assert after.holds == frozenset({(hold_id, FINAL_STATUS[winners[0]], 300)})
    await assert_verified(db, books.tenant_id)


@pytest.mark.parametrize("action", ACTIONS)
async def test_a_hold_of_another_tenant_is_not_found(
    db: Database, books: Books, action: str
) -> None:
    hold_id = await place(db, books, 300)
    other = await make_tenant(db)
    before = await read_snapshot(db, books)
    with pytest.raises(NotFound):
        async with db.write() as conn:
            await resolve(conn, books, action, hold_id, 300, tenant_id=other.tenant_id)
    assert await read_snapshot(db, books) == before
    assert await hold_status(db, books, hold_id) == "open"
    await assert_verified(db, books.tenant_id)
    await assert_verified(db, other.tenant_id)


@pytest.mark.parametrize("action", ACTIONS)
async def test_an_unknown_hold_is_not_found(db: Database, books: Books, action: str) -> None:
    before = await read_snapshot(db, books)
    with pytest.raises(NotFound):
        async with db.write() as conn:
            await resolve(conn, books, action, uuid.uuid4(), 300)
    assert await read_snapshot(db, books) == before
