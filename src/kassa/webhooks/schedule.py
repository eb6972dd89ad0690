"""When a delivery is tried again: the retry schedule, its jitter, a receiver's ``Retry-After``,
and when a delivery that keeps failing inside Kassa counts as stuck."""

from __future__ import annotations

import email.utils
import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from kassa.webhooks.tables import DELIVERY_FAILED, DELIVERY_PENDING, DELIVERY_SUCCEEDED

# Waits before each retry after the first attempt: 7 retries, about 28 hours in all.
RETRY_SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_SCHEDULE) + 1
JITTER = 0.1  # each wait is stretched or shrunk by up to 10 %
MAX_RETRY_AFTER = timedelta(hours=24)
# Attempts in a row that failed inside Kassa before a pending delivery counts as stuck.
STUCK_AFTER = 3
GONE = 410  # the receiver says the endpoint is gone for good


@dataclass(frozen=True)
class NextStep:
    """Where a delivery goes after an attempt: its status, and when it is due again."""

    status: str
    next_attempt_at: datetime | None


def next_step(
    round_attempt: int,
    status_code: int | None,
    retry_after: timedelta | None,
    rng: random.Random,
    now: datetime,
) -> NextStep:
    """After the ``round_attempt``-th attempt of its round, answered ``status_code`` (None: no
    answer): succeeded on a 2xx; failed on a 410 or after ``MAX_ATTEMPTS``; otherwise due again
    after the schedule's wait (jittered), or after ``retry_after`` if that is longer."""
    if status_code is not None and 200 <= status_code < 300:
        return NextStep(DELIVERY_SUCCEEDED, None)
    if status_code == GONE or round_attempt >= MAX_ATTEMPTS:
        return NextStep(DELIVERY_FAILED, None)
    wait = RETRY_SCHEDULE[round_attempt - 1]
    wait *= 1 + rng.uniform(-JITTER, JITTER)
    if retry_after is not None:
        wait = max(wait, retry_after)
    return NextStep(DELIVERY_PENDING, now + wait)


def retry_after(value: str | None, now: datetime) -> timedelta | None:
    """``Retry-After`` as seconds or an HTTP date, capped at a day; None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        wait = timedelta(seconds=int(value))
    else:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if moment.tzinfo is None:
            return None
        wait = moment - now
    return min(max(wait, timedelta(0)), MAX_RETRY_AFTER)
