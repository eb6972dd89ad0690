"""Concurrent deposits and withdrawals share statements on PostgreSQL, and each keeps its own
outcome: a refused one changes nothing and fails none of its neighbours."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from sqlalchemy import select

from kassa import migrations
from kassa.events.tables import events
from kassa.idempotency.service import Answer
from kassa.kit.clock import SystemClock
from kassa.kit.db import Backend, Database
from kassa.kit.errors import KassaError
from kassa.ledger import repository as ledger_repository
from kassa.ledger.tables import journal_transactions
from kassa.ledger.verify import verify
from kassa.wallets import engine_pg, movements, service
from kassa.wallets.batcher import Batcher, Posting, post_many
from kassa.wallets.schemas import NewWallet
from tests.conftest import PG_URL
from tests.helpers import TenantKey, create_pg_database, drop_pg_database, make_tenant


async def new_wallet(db: Database, tenant: TenantKey, deposit: int) -> uuid.UUID:
    now = SystemClock().now()
    async with db.write() as conn:
        wallet = await service.create_wallet(
            conn,
            tenant.tenant_id,
            NewWallet(customer_id=f"cust-{uuid.uuid4().hex[:8]}", currency=tenant.currency),
            now,
        )
    if deposit:
        await move(db, movements.DEPOSIT, tenant, wallet.id, deposit)
    return wallet.id


async def move(
    db: Database,
    movement: movements.Movement,
    tenant: TenantKey,
    wallet_id: uuid.UUID,
    amount: int,
    *,
    currency: str | None = None,
    reference: str | None = None,
) -> str:
    """The outcome's name: "ok" or the error code."""
    names: list[str] = []

    def answer_for(outcome: movements.Outcome) -> Answer:
        names.append(outcome.code if isinstance(outcome, KassaError) else "ok")
        return Answer(200, "text/plain", b"")

    request = movements.MoneyRequest(
        tenant.tenant_id, wallet_id, movement, amount, currency, reference
    )
    await movements.move(db, request, SystemClock().now(), answer_for)
    return names[0]


async def cash_balance(db: Database, tenant: TenantKey, wallet_id: uuid.UUID) -> int:
    async with db.read() as conn:
        account = await ledger_repository.wallet_account(conn, tenant.tenant_id, wallet_id, "cash")
    assert account is not None
    return int(account.balance)


def withdrawal_posting(
    tenant: TenantKey,
    wallet: uuid.UUID,
    amount: int,
    *,
    reference: str | None = None,
    kind: str = "withdrawal",
) -> Posting:
    """A withdrawal as the batch function takes it; its event data names its amount."""
    return Posting(
        tenant_id=tenant.tenant_id,
        wallet_id=wallet,
        account_kind="cash",
        sign=-1,
        amount=amount,
        currency=None,
        counter_kind="payouts_clearing",
        transaction_id=uuid.uuid4(),
        transaction_kind=kind,
        reference=reference,
        description=None,
        metadata={},
        now=SystemClock().now(),
        refuse_frozen=True,
        event_id=uuid.uuid4(),
        event_type="wallet.debited",
        event_data=f'{{"amount": {amount}}}',
    )


@pytest.fixture
async def one_slot_db(database_url: str) -> AsyncIterator[Database]:
    """One hot-path connection: on PostgreSQL, everything that arrives meanwhile is batched."""
    database = Database(database_url, pool_size=1)
    await database.open()
    yield database
    await database.close()


async def test_concurrent_movements_each_get_their_own_outcome(one_slot_db: Database) -> None:
    db = one_slot_db
    tenant = await make_tenant(db)
    scarce = await new_wallet(db, tenant, 100)
    plenty = await new_wallet(db, tenant, 1000)
    unknown = uuid.uuid4()

    jobs = {
        **{f"scarce-{i}": move(db, movements.WITHDRAWAL, tenant, scarce, 10) for i in range(20)},
        **{f"deposit-{i}": move(db, movements.DEPOSIT, tenant, plenty, 5) for i in range(10)},
        **{f"unknown-{i}": move(db, movements.WITHDRAWAL, tenant, unknown, 1) for i in range(3)},
        "currency": move(db, movements.WITHDRAWAL, tenant, plenty, 1, currency="USD"),
        **{
            f"reference-{i}": move(db, movements.WITHDRAWAL, tenant, plenty, 7, reference="once")
            for i in range(2)
        },
    }
    outcomes = dict(zip(jobs, await asyncio.gather(*jobs.values()), strict=True))

    def tally(prefix: str) -> Counter[str]:
        return Counter(v for k, v in outcomes.items() if k.startswith(prefix))

    assert tally("scarce") == {"ok": 10, "insufficient_funds": 10}
    assert tally("deposit") == {"ok": 10}
    assert tally("unknown") == {"not_found": 3}
    assert tally("currency") == {"currency_mismatch": 1}
    assert tally("reference") == {"ok": 1, "duplicate_reference": 1}
    assert await cash_balance(db, tenant, scarce) == 0
    assert await cash_balance(db, tenant, plenty) == 1000 + 10 * 5 - 7
    async with db.read() as conn:
        report = await verify(conn, tenant.tenant_id)
    assert report.ok, report.problems
    assert report.transactions == 2 + 10 + 10 + 1  # two fundings, then what succeeded
    if db.backend is Backend.POSTGRESQL:
        batcher = engine_pg.batcher_of(db)
        assert batcher.statements < len(jobs), "concurrent postings should share statements"


@pytest.fixture(scope="module")
async def pg_url() -> AsyncIterator[str]:
    """A PostgreSQL database of this module's own, whatever backend the session runs."""
    name = f"kassa_test_{uuid.uuid4().hex[:10]}"
    url = await create_pg_database(PG_URL, name)
    await asyncio.to_thread(migrations.upgrade, url)
    yield url
    await drop_pg_database(PG_URL, name)


async def test_a_batch_the_database_refuses_is_posted_again_item_by_item(pg_url: str) -> None:
    db = Database(pg_url, pool_size=1)
    await db.open()
    try:
        tenant = await make_tenant(db)
        wallet = await new_wallet(db, tenant, 1000)
        batcher = Batcher(db.pool, slots=1)

        def withdrawal(amount: int, kind: str = "withdrawal") -> Posting:
            return withdrawal_posting(tenant, wallet, amount, kind=kind)

        # The first goes alone; the next four wait for it and go as one statement, which the
        # database refuses whole because one of them breaks a CHECK constraint.
        good = [withdrawal(amount) for amount in (10, 20, 30)]
        bad = replace(withdrawal(40), transaction_kind="not-a-kind")
        results = await asyncio.gather(
            batcher.post(withdrawal(1)),
            *(batcher.post(p) for p in (good[0], bad, good[1], good[2])),
            return_exceptions=True,
        )

        assert isinstance(results[2], asyncpg.CheckViolationError), results[2]
        posted = [r for i, r in enumerate(results) if i != 2]
        assert [getattr(r, "error", r) for r in posted] == [None] * 4
        assert [getattr(r, "balance_after", None) for r in posted] == [999, 989, 969, 939]
        assert batcher.statements == 1 + 1 + 4  # alone, the refused batch, then each again
        assert await cash_balance(db, tenant, wallet) == 1000 - 1 - 10 - 20 - 30
        async with db.read() as conn:
            report = await verify(conn, tenant.tenant_id)
        assert report.ok, report.problems
        assert report.transactions == 1 + 4
        async with db.read() as conn:
            types = (
                await conn.scalars(
                    select(events.c.type)
                    .where(events.c.tenant_id == tenant.tenant_id)
                    .order_by(events.c.seq)
                )
            ).all()
        # The refused item wrote no event; every posted one wrote its own.
        assert types == ["wallet.created", "wallet.credited"] + ["wallet.debited"] * 4
    finally:
        await db.close()


async def test_one_statement_posts_its_items_in_order_and_a_reference_once(pg_url: str) -> None:
    """``kassa_post_wallets`` writes a batch's rows after checking every item: a reference
    taken by an earlier item of the same statement is refused as a committed one is, naming
    that item's transaction, and the rows keep the items' order."""
    db = Database(pg_url, pool_size=1)
    await db.open()
    try:
        tenant = await make_tenant(db)
        first = await new_wallet(db, tenant, 1000)
        second = await new_wallet(db, tenant, 1000)

        def withdrawal(wallet: uuid.UUID, amount: int, reference: str | None) -> Posting:
            return withdrawal_posting(tenant, wallet, amount, reference=reference)

        items = [
            withdrawal(first, 10, "twice"),
            withdrawal(first, 5000, "short"),  # refused: its reference stays free
            withdrawal(second, 20, "twice"),
            withdrawal(second, 30, "short"),
            withdrawal(first, 40, None),
        ]
        async with db.pool.acquire() as raw:
            posted = await post_many(raw, items)

        assert [p.error for p in posted] == [
            None,
            "insufficient_funds",
            "duplicate_reference",
            None,
            None,
        ]
        assert (posted[2].existing_object, posted[2].existing_id) == (
            "transaction",
            items[0].transaction_id,
        )
        assert [p.balance_after for p in posted] == [990, None, None, 970, 950]
        assert await cash_balance(db, tenant, first) == 950
        assert await cash_balance(db, tenant, second) == 970
        async with db.read() as conn:
            report = await verify(conn, tenant.tenant_id)
            written = (
                await conn.execute(
                    select(events.c.data)
                    .where(events.c.tenant_id == tenant.tenant_id)
                    .where(events.c.type == "wallet.debited")
                    .order_by(events.c.seq)
                )
            ).all()
            transactions = (
                await conn.scalars(
                    select(journal_transactions.c.id)
                    .where(journal_transactions.c.tenant_id == tenant.tenant_id)
                    .where(journal_transactions.c.kind == "withdrawal")
                    .order_by(journal_transactions.c.seq)
                )
            ).all()
        assert report.ok, report.problems
        assert transactions == [items[i].transaction_id for i in (0, 3, 4)]
        assert [(d["amount"], d["balance_before"], d["balance_after"]) for (d,) in written] == [
            (10, 1000, 990),
            (30, 1000, 970),
            (40, 990, 950),
        ]
    finally:
        await db.close()
