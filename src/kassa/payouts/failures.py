"""The payout worker's failures at one payout, its back-off, and the stuck payouts.

A payout whose work fails (its expiry, asking its rail, or recording the rail's answer) is left
alone for a while that doubles with each failure in a row, from ``FIRST_RETRY`` up to
``MAX_RETRY``, so a payout that fails every time costs one try per step instead of one per pass
and never holds up the others. A success clears the count. A payout the worker has failed at
``STUCK_AFTER`` times in a row is *stuck*: it needs an operator (``kassa stuck``, the
``kassa_payouts_stuck`` gauge). Only a payout in an open status counts: once it is final, its
worker has nothing left to do.

What is kept of a failure is its kind (``error_summary``), never its message: a database
error's message carries the statement's parameters.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.dberrors import ERROR_CHARS
from kassa.payouts import repository
from kassa.payouts.repository import StuckPayout

FIRST_RETRY = timedelta(seconds=30)
MAX_RETRY = timedelta(hours=1)
STUCK_AFTER = 3
OPEN_STATUSES = ("PREVIEW", "PENDING", "PROCESSING")


def retry_delay(failures: int) -> timedelta:
    """How long to leave a payout after its ``failures``-th failure in a row."""
    doublings = min(max(failures - 1, 0), 20)
    return min(FIRST_RETRY * (1 << doublings), MAX_RETRY)


@dataclass(frozen=True)
class Failure:
    failures: int  # in a row, this one included
    retry_at: datetime

    @property
    def stuck(self) -> bool:
        return self.failures >= STUCK_AFTER


async def record(
    conn: AsyncConnection, payout_id: uuid.UUID, error: str, now: datetime
) -> Failure | None:
    """Count one more failure and push the payout's next try out; None if the payout is final
    or gone, or no longer due (another worker counted this step, or succeeded)."""
    state = await repository.failure_state(conn, payout_id)
    if state is None or state.status not in OPEN_STATUSES:
        return None
    # No longer due: another worker moved it on (failed and backed off, or succeeded) since.
    due_at = state.next_check_at if state.status == "PROCESSING" else state.worker_retry_at
    if due_at is not None and due_at > now:
        return None
    failures = state.worker_failures + 1
    retry_at = now + retry_delay(failures)
    values = {
        "worker_failures": failures,
        "worker_error": error[:ERROR_CHARS],
        "worker_failing_since": state.worker_failing_since or now,
        "worker_retry_at": retry_at,
    }
    if state.status == "PROCESSING":
        values["next_check_at"] = retry_at  # the worker asks the rail again then, not before
    await repository.update_payout(conn, payout_id, values)
    return Failure(failures, retry_at)


async def clear(conn: AsyncConnection, payout_id: uuid.UUID) -> None:
    """The worker succeeded at the payout: it is no longer failing."""
    await repository.clear_failures(conn, payout_id)


async def stuck(conn: AsyncConnection, limit: int) -> list[StuckPayout]:
    """The stuck payouts, longest failing first."""
    return await repository.stuck_payouts(conn, OPEN_STATUSES, STUCK_AFTER, limit)


async def counts(conn: AsyncConnection) -> tuple[int, int]:
    """How many open payouts the worker is failing at (backing off), and how many are stuck."""
    return await repository.failing_counts(conn, OPEN_STATUSES, STUCK_AFTER)
