"""Every write of a payout goes through here, and the backend is chosen here, once.

A payout's creation and each of its status changes, posted through the API or recorded by the
payout worker from its rail, is one short transaction with its checks, its money, its event and
(through the API) its Idempotency-Key's answer: on PostgreSQL one call of a SQL function
(``engine_pg``: ``kassa_create_payout``, ``kassa_change_payout``), on SQLite one job of the
process's one writer thread (``engine_sqlite``). Both apply the rules of ``lifecycle`` in the
same order, refuse in the same words and answer the same ``Done``; ``tests/payouts/test_parity.py``
runs one table of cases through both.

The payout worker's changes go the same way: on PostgreSQL a rail's outcome and a payout's
expiry are calls of ``kassa_change_payout`` (``engine_pg_worker``), and a rail that has not
decided is one UPDATE of the payout's reference and next check; on SQLite each is a writer job.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta

from kassa.idempotency import service as idempotency
from kassa.kit.db import Backend, Database
from kassa.payouts import engine_pg, engine_pg_worker, engine_sqlite
from kassa.payouts.connectors import Outcome, Submitted
from kassa.payouts.engine_pg import Done
from kassa.payouts.repository import Expiring
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
    receipts: Mapping[str, Submitted] | None = None,
) -> Done:
    """Move the payout to ``target`` if that is one of its ``next_status`` now (a manual
    outcome needs ``may_settle``), answered or refused as ``idempotency.run`` would; the
    ``Done``'s payout is the payout after the move (None: refused or replayed). A move to
    PROCESSING keeps the receipt in ``receipts`` of the payout's rail, if there is one
    (``rails.receipts_ahead``)."""
    receipts = receipts or {}
    if db.backend is Backend.POSTGRESQL:
        return await engine_pg.change_status(
            db,
            key,
            tenant_id,
            payout_id,
            target,
            reason,
            now,
            ttl,
            may_settle=may_settle,
            receipts=receipts,
        )
    return await engine_sqlite.change_status(
        db,
        key,
        tenant_id,
        payout_id,
        target,
        reason,
        now,
        ttl,
        may_settle=may_settle,
        receipts=receipts,
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
    if db.backend is Backend.POSTGRESQL:
        await engine_pg_worker.record_answer(
            db, tenant_id, payout_id, answer, now, recheck, clear_failures=clear_failures
        )
    else:
        await engine_sqlite.record_answer(
            db, tenant_id, payout_id, answer, now, recheck, clear_failures=clear_failures
        )


async def expire(db: Database, payout: Expiring, now: datetime, *, clear_failures: bool) -> bool:
    """Cancel a payout past its deadline (reason EXPIRED, a PENDING hold expired) if it is
    still in the status the worker found it in; with ``clear_failures`` the worker's past
    failures at it are cleared in the same transaction. Whether it cancelled it."""
    if db.backend is Backend.POSTGRESQL:
        return await engine_pg_worker.expire(db, payout, now, clear_failures=clear_failures)
    return await engine_sqlite.expire(db, payout, now, clear_failures=clear_failures)
