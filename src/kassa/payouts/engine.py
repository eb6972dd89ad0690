"""Every write of a payout goes through here, and the backend is chosen here, once.

A payout's creation and each of its status changes, posted through the API or recorded by the
payout worker from its rail, is one short transaction with its checks, its money, its event and
(through the API) its Idempotency-Key's answer: on PostgreSQL one call of a SQL function
(``engine_pg``: ``kassa_create_payout``, ``kassa_change_payout``), on SQLite one job of the
process's one writer thread (``engine_sqlite``). Both apply the rules of ``lifecycle`` in the
same order, refuse in the same words and answer the same ``Done``; ``tests/payouts/test_parity.py``
runs one table of cases through both.

Two of the PostgreSQL worker's changes have no SQL function yet and run here as a SQLAlchemy
unit of work, on the same rules: a payout's expiry, and a rail that has not decided. On SQLite
both are writer jobs like the rest.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import service as events
from kassa.idempotency import service as idempotency
from kassa.kit.db import Backend, Database
from kassa.ledger import service as ledger
from kassa.payouts import engine_pg, engine_sqlite, failures, lifecycle, repository
from kassa.payouts.connectors import Outcome, Submitted
from kassa.payouts.engine_pg import Done
from kassa.payouts.repository import Expiring, Payout
from kassa.payouts.schemas import NewPayout, PayoutStatus

__all__ = ["Done", "change_status", "create", "expire", "record_answer", "record_submission"]


async def create(
    db: Database,
    key: idempotency.Key | None,
    tenant_id: uuid.UUID,
    body: NewPayout,
    now: datetime,
    preview_ttl: timedelta,
    ttl: timedelta,
) -> Done:
    """A PREVIEW, answered (201) or refused as ``idempotency.run`` would answer it."""
    if db.backend is Backend.POSTGRESQL:
        return await engine_pg.create(db, key, tenant_id, body, now, preview_ttl, ttl)
    return await engine_sqlite.create(db, key, tenant_id, body, now, preview_ttl, ttl)


async def change_status(
    db: Database,
    key: idempotency.Key | None,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    target: PayoutStatus,
    reason: str | None,
    now: datetime,
    ttl: timedelta,
    *,
    may_settle: bool,
) -> Done:
    """Move the payout to ``target`` if that is one of its ``next_status`` now (a manual
    outcome needs ``may_settle``), answered or refused as ``idempotency.run`` would; the
    ``Done``'s payout is the payout after the move (None: refused or replayed)."""
    if db.backend is Backend.POSTGRESQL:
        return await engine_pg.change_status(
            db, key, tenant_id, payout_id, target, reason, now, ttl, may_settle=may_settle
        )
    return await engine_sqlite.change_status(
        db, key, tenant_id, payout_id, target, reason, now, ttl, may_settle=may_settle
    )


async def record_submission(
    db: Database, payout_id: uuid.UUID, reference: str, check_at: datetime
) -> None:
    """Keep the rail's reference and when to ask it first, while the payout is PROCESSING."""
    if db.backend is Backend.POSTGRESQL:
        await engine_pg.record_submission(db, payout_id, reference, check_at)
    else:
        await engine_sqlite.record_submission(db, payout_id, reference, check_at)


async def record_answer(
    db: Database,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    answer: Outcome | Submitted,
    now: datetime,
    recheck: timedelta,
    *,
    clear_failures: bool,
) -> None:
    """What a rail answered the worker, in one transaction: a receipt's reference and when to
    ask first, or an outcome applied once (only a PROCESSING payout takes it; one the rail has
    not decided is asked again after ``recheck``); with ``clear_failures``, the worker's past
    failures at the payout are cleared in the same transaction."""
    if db.backend is Backend.SQLITE:
        await engine_sqlite.record_answer(
            db, tenant_id, payout_id, answer, now, recheck, clear_failures=clear_failures
        )
        return
    async with db.write() as conn:
        if isinstance(answer, Submitted):
            await repository.record_submission(conn, payout_id, answer.reference, answer.check_at)
        elif answer.status == "PROCESSING":
            await _keep_processing_in(conn, tenant_id, payout_id, answer, now + recheck)
        else:
            await engine_pg.apply_outcome_in(conn, tenant_id, payout_id, answer, now)
        if clear_failures:
            await failures.clear(conn, payout_id)


async def expire(db: Database, payout: Expiring, now: datetime, *, clear_failures: bool) -> bool:
    """Cancel a payout past its deadline (reason EXPIRED, a PENDING hold expired) if it is
    still in the status the worker found it in; with ``clear_failures`` the worker's past
    failures at it are cleared in the same transaction. Whether it cancelled it."""
    if db.backend is Backend.SQLITE:
        return await engine_sqlite.expire(db, payout, now, clear_failures=clear_failures)
    async with db.write() as conn:
        expired = await _expire_in(conn, payout, now)
        if clear_failures:
            await failures.clear(conn, payout.id)
    return expired


# -- the PostgreSQL worker's changes that no SQL function covers yet -----------------------------


async def _locked(conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID) -> Payout:
    found = await repository.get_payout(conn, tenant_id, payout_id, lock=True)
    if found is None:
        raise lifecycle.not_found(payout_id)
    return found


async def _expire_in(conn: AsyncConnection, payout: Expiring, now: datetime) -> bool:
    """The expiry, once: the row is locked and its status checked first, so of two workers
    one cancels it."""
    found = await _locked(conn, payout.tenant_id, payout.id)
    if found.status != payout.status:
        return False
    if found.hold_id is not None:
        await ledger.expire_hold(conn, found.tenant_id, found.hold_id, now)
    after = lifecycle.moved(found, "CANCELLED", lifecycle.EXPIRED, now)
    cancelled = {
        "status": after.status,
        "status_reason": after.status_reason,
        "history": after.history,
        "updated_at": after.updated_at,
    }
    await repository.update_payout(conn, found.id, cancelled)
    await events.record(conn, found.tenant_id, "payout.cancelled", lifecycle.shown(after), now)
    return True


async def _keep_processing_in(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    outcome: Outcome,
    check_at: datetime,
) -> None:
    """The rail has not decided: keep its reference and ask it again at ``check_at``, if the
    payout is still PROCESSING (the row is locked first)."""
    payout = await _locked(conn, tenant_id, payout_id)
    if payout.status == "PROCESSING":
        reference = lifecycle.rail_reference(payout, outcome)
        rechecked = {"connector_reference": reference, "next_check_at": check_at}
        await repository.update_payout(conn, payout.id, rechecked)
