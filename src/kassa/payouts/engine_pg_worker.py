"""The PostgreSQL engine of the payout worker's changes: what a rail answered, and a payout's
expiry.

A rail's final outcome (COMPLETED, FAILED) and a payout's expiry (CANCELLED with reason
EXPIRED, a PENDING hold expired) are one call of ``kassa_change_payout`` each, the function that
makes every status change on PostgreSQL, which writes its event too, with (when asked) the
clearing of the worker's past failures at the payout, in one transaction on a pooled connection
(a refusal raises and rolls the clearing back). The function
changes the payout only if it is still in the status the worker found it in (PROCESSING for an
outcome; PREVIEW or PENDING for an expiry), with its row locked, so of two workers racing over
one payout one changes it; the other is told ``invalid_status_transition`` and leaves it.

A rail's receipt, or an answer that it has not decided yet, changes no status: one UPDATE of
the payout's reference and next check, while it is PROCESSING, in a SQLAlchemy unit of work
with the clearing of its failures. ``engine_sqlite`` does the same in the SQLite writer.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta

import asyncpg
import orjson

from kassa.kit import dberrors
from kassa.kit.db import Database
from kassa.kit.ids import new_id
from kassa.payouts import failures, lifecycle, repository
from kassa.payouts.connectors import Outcome, Submitted
from kassa.payouts.engine_pg import CHANGE_SQL, change_refusal, payout_of
from kassa.payouts.repository import Expiring


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
    """What a rail answered the worker, in one transaction (see ``engine.record_answer``)."""
    if isinstance(answer, Outcome) and answer.status != "PROCESSING":
        reason = None if answer.status == "COMPLETED" else answer.reason or "FAILED"
        await _change(
            db,
            tenant_id,
            payout_id,
            answer.status,
            reason,
            now,
            clear_failures=clear_failures,
            rail_reference=answer.reference or None,  # none: the payout keeps the one it has
        )
        return
    async with db.write() as conn:
        if isinstance(answer, Submitted):
            await repository.record_submission(conn, payout_id, answer.reference, answer.check_at)
        else:
            reference = answer.reference or None  # none: the payout keeps the one it has
            kept = await repository.keep_processing(
                conn, tenant_id, payout_id, reference, now + recheck
            )
            if not kept and await repository.get_payout(conn, tenant_id, payout_id) is None:
                raise lifecycle.not_found(payout_id)
        if clear_failures:
            await failures.clear(conn, payout_id)


async def expire(db: Database, payout: Expiring, now: datetime, *, clear_failures: bool) -> bool:
    """Cancel a payout past its deadline (see ``engine.expire``); whether it cancelled it."""
    return await _change(
        db,
        payout.tenant_id,
        payout.id,
        "CANCELLED",
        lifecycle.EXPIRED,
        now,
        clear_failures=clear_failures,
        expiring=payout.status,
    )


async def _change(
    db: Database,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    target: str,
    reason: str | None,
    now: datetime,
    *,
    clear_failures: bool,
    rail_reference: str | None = None,
    expiring: str | None = None,
) -> bool:
    """One change by the worker: a rail's outcome, or (``expiring``) an expiry. False if the
    payout was no longer in the status the worker found it in (its failures are cleared all
    the same); a refusal raises, and the transaction, which wrote nothing, rolls back."""
    began = time.monotonic()
    try:
        async with db.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                CHANGE_SQL,
                tenant_id,
                payout_id,
                target,
                reason,
                orjson.dumps(lifecycle.history_entry(target, now, reason)).decode(),
                now,
                True,  # the worker's own change: no scope to check
                None,  # no Idempotency-Key
                None,
                new_id(),  # never used: the worker places no hold
                new_id(),  # the capture's journal transaction, if it posts one
                lifecycle.RECOVER_AFTER,
                expiring is None,  # a rail's outcome, unless an expiry
                rail_reference,
                expiring,
                clear_failures,
                None,  # no rail's receipt: the worker moves nothing to PROCESSING
                new_id(),  # the event's, which the function writes with the change
                None,  # no stored answer
            )
            assert row is not None  # the function always answers one row
            changed: bool = row["o_error"] != "invalid_status_transition"
            payout = payout_of(row) if row["o_found"] else None
            if changed and row["o_error"] is not None:
                raise change_refusal(row["o_error"], row["o_info"], payout, payout_id, target)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        dberrors.raise_translated(error)
    dberrors.database_answered(began)
    return changed
