"""SQL of payouts and of each tenant's payment options (the rules are in ``lifecycle``,
``options`` and ``rails``; the worker's failures at a payout in ``failures``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.payouts.tables import payment_options, payouts, sandbox_submissions


@dataclass(frozen=True)
class Payout:
    """A row of ``payouts``."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    wallet_id: uuid.UUID
    customer_id: str
    instrument_id: uuid.UUID
    payment_option: str
    connector: str
    amount: int
    currency: str
    fees: list[dict[str, Any]]
    fee_total: int
    status: str
    status_reason: str | None
    reference: str | None
    description: str | None
    metadata: dict[str, str]
    hold_id: uuid.UUID | None
    transaction_id: uuid.UUID | None
    connector_reference: str | None
    next_check_at: datetime | None
    expires_at: datetime
    pending_expires_at: datetime | None
    history: list[dict[str, Any]]
    created_at: datetime
    updated_at: datetime
    worker_failures: int
    worker_error: str | None
    worker_failing_since: datetime | None
    worker_retry_at: datetime | None


@dataclass(frozen=True)
class Expiring:
    """A PREVIEW or PENDING payout past its deadline, as the worker sees it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    worker_failures: int


@dataclass(frozen=True)
class StoredOptions:
    options: list[dict[str, Any]]
    pending_ttl_seconds: int


def _payout(row: Any) -> Payout:
    return Payout(**{name: row._mapping[name] for name in Payout.__dataclass_fields__})


# ---- payment options -------------------------------------------------------------------------


async def stored_options(conn: AsyncConnection, tenant_id: uuid.UUID) -> StoredOptions | None:
    row = (
        await conn.execute(
            select(payment_options.c.options, payment_options.c.pending_ttl_seconds).where(
                payment_options.c.tenant_id == tenant_id
            )
        )
    ).first()
    return None if row is None else StoredOptions(list(row.options), row.pending_ttl_seconds)


async def store_options(
    conn: AsyncConnection, tenant_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """Insert or replace the tenant's options in one statement, so two first PUTs racing
    cannot both insert: the last one wins, as it would if they came one after the other."""
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = upsert(payment_options).values(tenant_id=tenant_id, **values)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=[payment_options.c.tenant_id], set_=values)
    )


# ---- payouts ---------------------------------------------------------------------------------


async def insert_payout(conn: AsyncConnection, values: dict[str, Any]) -> None:
    await conn.execute(insert(payouts).values(values))


async def get_payout(
    conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID, *, lock: bool = False
) -> Payout | None:
    """The tenant's payout; ``lock``: locked until the transaction ends (PostgreSQL; SQLite
    runs one writer at a time)."""
    statement = select(payouts).where(payouts.c.tenant_id == tenant_id, payouts.c.id == payout_id)
    if lock and conn.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).first()
    return None if row is None else _payout(row)


async def list_payouts(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    status: str | None,
    customer_id: str | None,
    wallet_id: uuid.UUID | None,
    after: Payout | None,
    limit: int,
    reference: str | None = None,
    offset: int = 0,
) -> list[Payout]:
    """The tenant's payouts, newest first, after ``after`` (or past the first ``offset``); up
    to ``limit``."""
    statement = select(payouts).where(payouts.c.tenant_id == tenant_id)
    if reference is not None:
        statement = statement.where(payouts.c.reference == reference)
    if status is not None:
        statement = statement.where(payouts.c.status == status)
    if customer_id is not None:
        statement = statement.where(payouts.c.customer_id == customer_id)
    if wallet_id is not None:
        statement = statement.where(payouts.c.wallet_id == wallet_id)
    if after is not None:
        statement = statement.where(
            (payouts.c.created_at < after.created_at)
            | ((payouts.c.created_at == after.created_at) & (payouts.c.id < after.id))
        )
    rows = await conn.execute(
        statement.order_by(payouts.c.created_at.desc(), payouts.c.id.desc())
        .limit(limit)
        .offset(offset or None)
    )
    return [_payout(row) for row in rows]


async def update_payout(
    conn: AsyncConnection, payout_id: uuid.UUID, values: dict[str, Any]
) -> None:
    await conn.execute(update(payouts).where(payouts.c.id == payout_id).values(**values))


async def record_submission(
    conn: AsyncConnection, payout_id: uuid.UUID, reference: str, check_at: datetime
) -> None:
    """Keep the rail's reference and when to ask it first, while the payout is PROCESSING."""
    await conn.execute(
        update(payouts)
        .where(payouts.c.id == payout_id, payouts.c.status == "PROCESSING")
        .values(connector_reference=reference, next_check_at=check_at)
    )


async def keep_processing(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    reference: str | None,
    check_at: datetime,
) -> bool:
    """The rail has not decided: keep its reference (``reference``, or if None the one kept
    before: ``lifecycle.rail_reference``) and ask it again at ``check_at``, if the payout is
    still PROCESSING; whether it was."""
    result = await conn.execute(
        update(payouts)
        .where(
            payouts.c.tenant_id == tenant_id,
            payouts.c.id == payout_id,
            payouts.c.status == "PROCESSING",
        )
        .values(
            connector_reference=func.coalesce(reference, payouts.c.connector_reference),
            next_check_at=check_at,
        )
    )
    return bool(result.rowcount)


async def due_checks(conn: AsyncConnection, now: datetime, limit: int) -> list[Payout]:
    """PROCESSING payouts whose rail is due to be asked, the longest due first."""
    rows = await conn.execute(
        select(payouts)
        .where(payouts.c.status == "PROCESSING", payouts.c.next_check_at <= now)
        .order_by(payouts.c.next_check_at)
        .limit(limit)
    )
    return [_payout(row) for row in rows]


async def due_expiries(conn: AsyncConnection, now: datetime, limit: int) -> list[Expiring]:
    """PENDING payouts past their pending deadline and PREVIEW payouts past their expiration
    time (up to ``limit`` of each), except those the worker is leaving alone after a failure
    (``worker_retry_at``)."""
    due: list[Expiring] = []
    for status, deadline in (
        ("PENDING", payouts.c.pending_expires_at),
        ("PREVIEW", payouts.c.expires_at),
    ):
        rows = await conn.execute(
            select(payouts.c.id, payouts.c.tenant_id, payouts.c.status, payouts.c.worker_failures)
            .where(
                payouts.c.status == status,
                deadline <= now,
                or_(payouts.c.worker_retry_at.is_(None), payouts.c.worker_retry_at <= now),
            )
            .order_by(deadline)
            .limit(limit)
        )
        due += [Expiring(*row) for row in rows]
    return due


async def count_by_status(conn: AsyncConnection, statuses: tuple[str, ...]) -> dict[str, int]:
    """How many payouts are in each of ``statuses`` (a status with none is left out)."""
    rows = await conn.execute(
        select(payouts.c.status, func.count())
        .where(payouts.c.status.in_(statuses))
        .group_by(payouts.c.status)
    )
    return {status: int(count) for status, count in rows}


# ---- the sandbox rail's own records ----------------------------------------------------------


async def insert_sandbox_submission(
    conn: AsyncConnection, payout_id: uuid.UUID, submitted_at: datetime
) -> None:
    """Raises ``IntegrityError`` if the payout was submitted before."""
    await conn.execute(
        insert(sandbox_submissions).values(payout_id=payout_id, submitted_at=submitted_at)
    )


async def sandbox_submitted_at(conn: AsyncConnection, payout_id: uuid.UUID) -> datetime | None:
    found: datetime | None = await conn.scalar(
        select(sandbox_submissions.c.submitted_at).where(
            sandbox_submissions.c.payout_id == payout_id
        )
    )
    return found


# ---- the worker's failures at a payout (the rules: ``kassa.payouts.failures``) ---------------


@dataclass(frozen=True)
class FailureState:
    status: str
    next_check_at: datetime | None
    worker_failures: int
    worker_failing_since: datetime | None
    worker_retry_at: datetime | None


@dataclass(frozen=True)
class StuckPayout:
    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    connector: str
    failures: int
    last_error: str | None
    failing_since: datetime | None
    next_attempt_at: datetime | None


async def failure_state(conn: AsyncConnection, payout_id: uuid.UUID) -> FailureState | None:
    """The payout's status and failures so far, locked until the transaction ends."""
    statement = select(
        payouts.c.status,
        payouts.c.next_check_at,
        payouts.c.worker_failures,
        payouts.c.worker_failing_since,
        payouts.c.worker_retry_at,
    ).where(payouts.c.id == payout_id)
    if conn.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).first()
    return None if row is None else FailureState(*row)


async def clear_failures(conn: AsyncConnection, payout_id: uuid.UUID) -> None:
    await conn.execute(
        update(payouts)
        .where(payouts.c.id == payout_id, payouts.c.worker_failures > 0)
        .values(
            worker_failures=0,
            worker_error=None,
            worker_failing_since=None,
            worker_retry_at=None,
        )
    )


def _failing(statuses: tuple[str, ...], at_least: int = 1) -> list[ColumnElement[bool]]:
    # ``worker_failures > 0`` as written lets SQLite use the partial index too.
    return [
        payouts.c.worker_failures > 0,
        payouts.c.worker_failures >= at_least,
        payouts.c.status.in_(statuses),
    ]


async def stuck_payouts(
    conn: AsyncConnection, statuses: tuple[str, ...], at_least: int, limit: int
) -> list[StuckPayout]:
    """Payouts in ``statuses`` the worker failed at ``at_least`` times in a row, longest
    failing first."""
    rows = await conn.execute(
        select(
            payouts.c.id,
            payouts.c.tenant_id,
            payouts.c.status,
            payouts.c.connector,
            payouts.c.worker_failures,
            payouts.c.worker_error,
            payouts.c.worker_failing_since,
            payouts.c.worker_retry_at,
        )
        .where(*_failing(statuses, at_least))
        .order_by(payouts.c.worker_failing_since, payouts.c.id)
        .limit(limit)
    )
    return [StuckPayout(*row) for row in rows]


async def failing_counts(
    conn: AsyncConnection, statuses: tuple[str, ...], stuck_after: int
) -> tuple[int, int]:
    """How many payouts in ``statuses`` the worker is failing at, and how many of them it
    failed at ``stuck_after`` times or more in a row."""
    stuck = case((payouts.c.worker_failures >= stuck_after, 1), else_=0)
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(stuck), 0)).where(*_failing(statuses))
        )
    ).one()
    return int(row[0]), int(row[1])
