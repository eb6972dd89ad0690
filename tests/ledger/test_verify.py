"""``kassa verify`` as an operator runs it: the real CLI against a database of the test's own."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from kassa.kit.clock import SystemClock
from kassa.kit.db import Database
from kassa.ledger import repository
from kassa.wallets import service as wallets
from kassa.wallets.movements import DEPOSIT, WITHDRAWAL, Movement
from kassa.wallets.schemas import NewWallet
from tests.helpers import make_tenant, move_money, run_cli


@dataclass(frozen=True)
class Funded:
    tenant_id: uuid.UUID
    wallet_id: uuid.UUID
    cash_id: int


@dataclass(frozen=True)
class Ledger:
    url: str
    db: Database
    corrupted: Funded  # deposited 1000, withdrew 300
    untouched: Funded  # deposited 500


async def move(
    db: Database,
    movement: Movement,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    amount: int,
) -> None:
    await move_money(db, movement, tenant_id, wallet_id, amount)


async def funded_wallet(db: Database, deposit: int, withdrawal: int = 0) -> Funded:
    tenant = await make_tenant(db)
    async with db.write() as conn:
        wallet = await wallets.create_wallet(
            conn,
            tenant.tenant_id,
            NewWallet(customer_id="cust-1", currency=tenant.currency),
            SystemClock().now(),
        )
    await move(db, DEPOSIT, tenant.tenant_id, wallet.id, deposit)
    if withdrawal:
        await move(db, WITHDRAWAL, tenant.tenant_id, wallet.id, withdrawal)
    async with db.read() as conn:
        cash = await repository.wallet_account(conn, tenant.tenant_id, wallet.id, "cash")
    assert cash is not None
    assert cash.balance == deposit - withdrawal
    return Funded(tenant.tenant_id, wallet.id, int(cash.id))


@pytest.fixture
async def ledger(fresh_database_url: str) -> AsyncIterator[Ledger]:
    db = Database(fresh_database_url)
    await db.open()
    try:
        corrupted = await funded_wallet(db, 1000, 300)
        untouched = await funded_wallet(db, 500)
        yield Ledger(fresh_database_url, db, corrupted, untouched)
    finally:
        await db.close()


async def verify_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, url, "verify", *args)


async def corrupt(ledger: Ledger, statement: str) -> None:
    async with ledger.db.write() as conn:
        result = await conn.execute(text(statement), {"id": ledger.corrupted.cash_id})
    assert result.rowcount == 1


def mismatches(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stdout.splitlines() if line.startswith("MISMATCH")]


async def test_verify_passes_on_a_consistent_ledger(ledger: Ledger) -> None:
    result = await verify_cli(ledger.url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    # Two tenants of three system and two wallet accounts; three transactions of two entries.
    assert "10 accounts, 3 transactions, 6 entries" in result.stdout
    assert mismatches(result) == []

    scoped = await verify_cli(ledger.url, "--tenant", str(ledger.corrupted.tenant_id))
    assert scoped.returncode == 0, scoped.stdout + scoped.stderr
    assert "5 accounts, 2 transactions, 4 entries" in scoped.stdout


async def test_verify_names_an_account_whose_cached_balance_is_wrong(ledger: Ledger) -> None:
    await corrupt(ledger, "UPDATE accounts SET balance = balance + 5 WHERE id = :id")

    result = await verify_cli(ledger.url)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    assert "OK" not in result.stdout
    [line] = mismatches(result)
    assert f"account {ledger.corrupted.cash_id} " in line
    assert str(ledger.corrupted.wallet_id) in line
    assert "caches balance 705 but its entries sum to 700" in line

    scoped = await verify_cli(ledger.url, "--tenant", str(ledger.corrupted.tenant_id))
    assert scoped.returncode == 1, scoped.stdout + scoped.stderr
    assert mismatches(scoped) == [line]


async def test_verify_names_an_account_whose_cached_held_is_wrong(ledger: Ledger) -> None:
    await corrupt(ledger, "UPDATE accounts SET held = held + 1 WHERE id = :id")

    result = await verify_cli(ledger.url)
    assert result.returncode == 1, result.stdout + result.stderr
    [line] = mismatches(result)
    assert f"account {ledger.corrupted.cash_id} " in line
    assert str(ledger.corrupted.wallet_id) in line
    assert "caches held 1 but its open holds sum to 0" in line


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE accounts SET balance = balance + 5 WHERE id = :id",
        "UPDATE accounts SET held = held + 1 WHERE id = :id",
    ],
)
async def test_verify_of_another_tenant_is_untouched_by_a_corruption(
    ledger: Ledger, statement: str
) -> None:
    await corrupt(ledger, statement)
    result = await verify_cli(ledger.url, "--tenant", str(ledger.untouched.tenant_id))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    assert "5 accounts, 1 transactions, 2 entries" in result.stdout
    assert mismatches(result) == []


async def test_verify_refuses_a_tenant_that_is_not_an_id(ledger: Ledger) -> None:
    result = await verify_cli(ledger.url, "--tenant", "not-a-uuid")
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not a tenant id" in result.stderr
