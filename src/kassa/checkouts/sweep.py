"""Closing the sessions whose time ran out, so that each ends with its event.

A session left open past its ``expires_at`` already shows ``expired``; the background work
(``kassa worker``, or ``kassa serve`` on the SQLite default) also closes it, with its
``checkout.expired`` event, so that a merchant's webhook handler (Soap's among them) hears of it.

One case is not an expiry: a session whose customer confirmed, whose payout was made and held,
but whose page did not get to close it (the process died in between, or the customer's confirm
arrived a moment before the deadline and is still under way). Its payout, found by the
reference a checkout gives it, went PENDING or further: the money moved, so the session is
closed ``completed`` with that payout, as the page would have, and says ``checkout.completed``.
A payout that never left PREVIEW (or was cancelled) moved nothing: the session expires.

The page refuses a confirm that arrives after the deadline, but one that arrived before it may
still be moving its payout on; so a session is closed only once ``GRACE`` has passed after its
deadline, when such a confirm has ended one way or the other.

Each session is closed by a conditional update (``repository.finish``: only an open one), so of
two workers, or a worker and the page, one closes it and writes its event.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime, timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from kassa.checkouts import repository, service
from kassa.checkouts.payout_reference import payout_reference
from kassa.kit.clock import Clock
from kassa.kit.db import Database
from kassa.kit.errors import ServiceUnavailable
from kassa.payouts import repository as payouts

# Statuses of a payout whose money the checkout moved (held, paid or failed on its rail).
MOVED = frozenset({"PENDING", "PROCESSING", "COMPLETED", "FAILED"})
# How long after its deadline a session is left to a confirm that arrived before it.
GRACE = timedelta(minutes=2)


async def close_past_due(db: Database, now: datetime, limit: int) -> int:
    """Close up to ``limit`` sessions past their deadline (and ``GRACE``); how many this call
    closed."""
    closed = 0
    async with db.write() as conn:
        for row in await repository.due_expiries(conn, now - GRACE, limit):
            made = await payouts.list_payouts(
                conn,
                row.tenant_id,
                status=None,
                customer_id=row.customer_id,
                wallet_id=row.wallet_id,  # the session's own wallet and customer only
                after=None,
                limit=1,
                reference=payout_reference(row.id),
            )
            if made and made[0].status in MOVED:
                payout = made[0]
                done = await service.finish(
                    conn, row.tenant_id, row.id, "completed", now, payout.id, payout.amount
                )
            else:
                done = await service.finish(conn, row.tenant_id, row.id, "expired", now)
            closed += int(done)
    return closed


class CheckoutSweeper:
    """The loop of ``close_past_due``, beside the webhook and payout workers."""

    def __init__(self, db: Database, clock: Clock, *, batch_size: int = 50) -> None:
        self.db = db
        self.clock = clock
        self.batch_size = batch_size
        self.log = structlog.get_logger("kassa.checkouts")

    async def run_once(self) -> int:
        return await close_past_due(self.db, self.clock.now(), self.batch_size)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once()
            except (ServiceUnavailable, SQLAlchemyError, OSError) as error:  # the database
                self.log.warning("checkout_sweep_failed", error=type(error).__name__)
                done = 0
            except Exception:  # a bug: log it and keep working
                self.log.exception("checkout_sweep_crashed")
                done = 0
            if done < self.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)
