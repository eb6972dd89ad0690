"""``kassa verify``: prove the ledger from its entries, trusting no cached number.

Checks that every journal transaction balances per currency and has two or more entries, that
every entry names an existing account of its currency, that every wallet account's cached
``balance`` is the sum of its entries and its ``held`` the sum of its open holds, and that every
wallet transaction's balance_before/balance_after agrees with its entries.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, and_, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.ledger.tables import accounts, holds, journal_entries, journal_transactions


@dataclass
class Report:
    accounts: int = 0
    transactions: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _scoped(statement: Select[Any], column: Any, tenant_id: uuid.UUID | None) -> Select[Any]:
    return statement if tenant_id is None else statement.where(column == tenant_id)


async def verify(conn: AsyncConnection, tenant_id: uuid.UUID | None = None) -> Report:
    report = Report()
    t, e, a, h = journal_transactions, journal_entries, accounts, holds
    entries_of_tenant = e.join(t, t.c.seq == e.c.transaction_seq)

    report.accounts = int(
        await conn.scalar(_scoped(select(func.count()).select_from(a), a.c.tenant_id, tenant_id))
        or 0
    )
    report.transactions = int(
        await conn.scalar(_scoped(select(func.count()).select_from(t), t.c.tenant_id, tenant_id))
        or 0
    )
    report.entries = int(
        await conn.scalar(
            _scoped(select(func.count()).select_from(entries_of_tenant), t.c.tenant_id, tenant_id)
        )
        or 0
    )

    unbalanced = _scoped(
        select(t.c.id, e.c.currency, func.sum(e.c.amount))
        .select_from(entries_of_tenant)
        .group_by(t.c.id, e.c.currency)
        .having(func.sum(e.c.amount) != 0),
        t.c.tenant_id,
        tenant_id,
    )
    for transaction_id, currency, total in await conn.execute(unbalanced):
        report.problems.append(
            f"transaction {transaction_id} is unbalanced: its {currency} entries sum to {total}"
        )

    entry_counts = (
        select(e.c.transaction_seq, func.count().label("n"))
        .group_by(e.c.transaction_seq)
        .subquery()
    )
    too_few = _scoped(
        select(t.c.id, func.coalesce(entry_counts.c.n, 0))
        .select_from(t.outerjoin(entry_counts, entry_counts.c.transaction_seq == t.c.seq))
        .where(func.coalesce(entry_counts.c.n, 0) < 2),
        t.c.tenant_id,
        tenant_id,
    )
    for transaction_id, count in await conn.execute(too_few):
        report.problems.append(f"transaction {transaction_id} has {count} entries, not two or more")

    stray = _scoped(
        select(e.c.id, t.c.id, e.c.account_id, e.c.currency, a.c.currency, a.c.tenant_id)
        .select_from(entries_of_tenant.outerjoin(a, a.c.id == e.c.account_id))
        .where(
            (a.c.id.is_(None)) | (a.c.currency != e.c.currency) | (a.c.tenant_id != t.c.tenant_id)
        ),
        t.c.tenant_id,
        tenant_id,
    )
    for entry_id, transaction_id, account_id, entry_cur, account_cur, owner in await conn.execute(
        stray
    ):
        report.problems.append(
            f"entry {entry_id} of transaction {transaction_id} names account {account_id} "
            f"({'missing' if account_cur is None else f'{account_cur}, tenant {owner}'}) "
            f"with currency {entry_cur}"
        )

    sums = (
        select(e.c.account_id, func.sum(e.c.amount).label("total"))
        .group_by(e.c.account_id)
        .subquery()
    )
    cached = _scoped(
        select(a.c.id, a.c.wallet_id, a.c.kind, a.c.balance, func.coalesce(sums.c.total, 0))
        .select_from(a.outerjoin(sums, sums.c.account_id == a.c.id))
        .where(a.c.wallet_id.is_not(None), a.c.balance != func.coalesce(sums.c.total, 0)),
        a.c.tenant_id,
        tenant_id,
    )
    for account_id, wallet_id, kind, balance, total in await conn.execute(cached):
        report.problems.append(
            f"account {account_id} ({kind} of wallet {wallet_id}) caches balance {balance} "
            f"but its entries sum to {total}"
        )

    open_holds = (
        select(h.c.account_id, func.sum(h.c.amount).label("total"))
        .where(h.c.status == "open")
        .group_by(h.c.account_id)
        .subquery()
    )
    held = _scoped(
        select(a.c.id, a.c.wallet_id, a.c.held, func.coalesce(open_holds.c.total, 0))
        .select_from(a.outerjoin(open_holds, open_holds.c.account_id == a.c.id))
        .where(a.c.wallet_id.is_not(None), a.c.held != func.coalesce(open_holds.c.total, 0)),
        a.c.tenant_id,
        tenant_id,
    )
    for account_id, wallet_id, cached_held, total in await conn.execute(held):
        report.problems.append(
            f"account {account_id} of wallet {wallet_id} caches held {cached_held} "
            f"but its open holds sum to {total}"
        )

    wallet_moves = (
        select(e.c.transaction_seq, func.sum(e.c.amount).label("moved"))
        .select_from(e.join(a, and_(a.c.id == e.c.account_id, a.c.wallet_id.is_not(None))))
        .group_by(e.c.transaction_seq)
        .subquery()
    )
    recorded = _scoped(
        select(
            t.c.id, t.c.balance_before, t.c.balance_after, func.coalesce(wallet_moves.c.moved, 0)
        )
        .select_from(t.outerjoin(wallet_moves, wallet_moves.c.transaction_seq == t.c.seq))
        .where(
            t.c.balance_after.is_not(None),
            t.c.balance_after - t.c.balance_before
            != func.coalesce(wallet_moves.c.moved, literal(0)),
        ),
        t.c.tenant_id,
        tenant_id,
    )
    for transaction_id, before, after, moved in await conn.execute(recorded):
        report.problems.append(
            f"transaction {transaction_id} records {before} -> {after} but its wallet "
            f"entries move {moved}"
        )
    return report
