"""SQL of the delivery worker: claims and their leases, what a claimed delivery needs, its
attempts, settling it after one, and the deliveries it keeps failing at.

A claim raises a delivery's attempt counter and pushes its due time out by a lease, with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL so that workers never claim the same delivery (SQLite
runs one writer at a time, so a claim there is atomic anyway). Every later statement about a
claimed delivery applies only while it is still at the attempt claimed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events.tables import events
from kassa.kit.dberrors import ERROR_CHARS
from kassa.webhooks.schedule import STUCK_AFTER
from kassa.webhooks.tables import (
    DELIVERY_CANCELED,
    DELIVERY_PENDING,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)


@dataclass(frozen=True)
class Claim:
    """A delivery claimed for its attempt number ``attempts``."""

    seq: int
    attempts: int
    round_start: int  # attempts made before the current round


@dataclass(frozen=True)
class Details:
    """What a claimed delivery needs to be sent: its endpoint and its event."""

    seq: int
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    url: str
    enabled: bool
    deleted_at: datetime | None
    format: str
    secret: bytes
    previous_secret: bytes | None
    previous_secret_expires_at: datetime | None
    event_id: uuid.UUID
    event_type: str
    event_created_at: datetime
    data: Any  # the event's data as stored (an object, unless the row is broken)


@dataclass(frozen=True)
class NewAttempt:
    delivery_seq: int
    attempt: int
    worker: str
    started_at: datetime
    status_code: int | None
    error: str | None
    latency_ms: int
    response_excerpt: str | None
    succeeded: bool


@dataclass(frozen=True)
class StuckDelivery:
    seq: int
    tenant_id: uuid.UUID
    endpoint_id: uuid.UUID
    event_id: uuid.UUID | None  # None once its event was purged
    attempts: int
    failures: int
    last_error: str | None
    next_attempt_at: datetime | None


async def claim_due(
    conn: AsyncConnection, now: datetime, lease: timedelta, limit: int
) -> list[Claim]:
    """Claim up to ``limit`` deliveries due at ``now`` (the most overdue first) for their next
    attempt, each leased until ``now + lease``; by ``seq``."""
    due = (
        select(webhook_deliveries.c.seq)
        .where(
            webhook_deliveries.c.status == DELIVERY_PENDING,
            webhook_deliveries.c.next_attempt_at <= now,
        )
        .order_by(webhook_deliveries.c.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    rows = await conn.execute(
        update(webhook_deliveries)
        .where(webhook_deliveries.c.seq.in_(due.scalar_subquery()))
        .values(
            attempts=webhook_deliveries.c.attempts + 1,
            next_attempt_at=now + lease,
            updated_at=now,
        )
        .returning(
            webhook_deliveries.c.seq,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.round_start,
        )
    )
    return sorted((Claim(*row) for row in rows), key=lambda claim: claim.seq)


async def details(conn: AsyncConnection, seqs: list[int]) -> list[Details]:
    """What each of these deliveries needs to be sent (none for one whose event or endpoint
    is missing); by ``seq``."""
    rows = await conn.execute(
        select(
            webhook_deliveries.c.seq,
            webhook_deliveries.c.tenant_id,
            webhook_deliveries.c.endpoint_id,
            webhook_endpoints.c.url,
            webhook_endpoints.c.enabled,
            webhook_endpoints.c.deleted_at,
            webhook_endpoints.c.format,
            webhook_endpoints.c.secret,
            webhook_endpoints.c.previous_secret,
            webhook_endpoints.c.previous_secret_expires_at,
            events.c.id.label("event_id"),
            events.c.type.label("event_type"),
            events.c.created_at.label("event_created_at"),
            events.c.data,
        )
        .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
        .join(events, events.c.seq == webhook_deliveries.c.event_seq)
        .where(webhook_deliveries.c.seq.in_(seqs))
        .order_by(webhook_deliveries.c.seq)
    )
    return [Details(**row._asdict()) for row in rows.all()]


async def cancel_claimed(conn: AsyncConnection, claim: Claim, now: datetime) -> None:
    """Cancel a claimed delivery (its endpoint was disabled or deleted since it was made),
    giving back the attempt number claimed for it."""
    await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.seq == claim.seq,
            webhook_deliveries.c.attempts == claim.attempts,
            webhook_deliveries.c.status == DELIVERY_PENDING,
        )
        .values(
            status=DELIVERY_CANCELED,
            attempts=webhook_deliveries.c.attempts - 1,
            next_attempt_at=None,
            updated_at=now,
        )
    )


async def insert_attempts(conn: AsyncConnection, attempts: list[NewAttempt]) -> None:
    """One row per attempt (a second row for the same attempt number breaks a constraint)."""
    await conn.execute(
        insert(webhook_attempts),
        [
            {
                "delivery_seq": attempt.delivery_seq,
                "attempt": attempt.attempt,
                "worker": attempt.worker,
                "started_at": attempt.started_at,
                "status_code": attempt.status_code,
                "error": attempt.error,
                "latency_ms": attempt.latency_ms,
                "response_excerpt": attempt.response_excerpt,
                "succeeded": attempt.succeeded,
            }
            for attempt in attempts
        ],
    )


async def settle(
    conn: AsyncConnection,
    seq: int,
    attempt: int,
    status: str,
    next_attempt_at: datetime | None,
    fault: str | None,
    now: datetime,
) -> int | None:
    """Move the delivery on after its attempt, only if it is still at the attempt this worker
    claimed (a redelivery or an expired lease may have moved it on): its new ``status`` and due
    time, and its failures in a row inside Kassa (one more with a ``fault``, else none). Its
    failures in a row as now counted; None if it had moved on."""
    values: dict[str, Any] = {"updated_at": now, "next_attempt_at": next_attempt_at}
    if status != DELIVERY_PENDING:
        values["status"] = status
    if fault is None:
        values.update(worker_failures=0, worker_error=None)
    else:
        values.update(
            worker_failures=webhook_deliveries.c.worker_failures + 1,
            worker_error=fault[:ERROR_CHARS],
        )
    settled = await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.seq == seq,
            webhook_deliveries.c.attempts == attempt,
            webhook_deliveries.c.status == DELIVERY_PENDING,
        )
        .values(**values)
        .returning(webhook_deliveries.c.worker_failures)
    )
    failures: int | None = settled.scalar()
    return failures


# ---- what operators see: deliveries the worker keeps failing at ------------------------------


def _failing(at_least: int = 1) -> list[ColumnElement[bool]]:
    # ``worker_failures > 0`` as written lets SQLite use the partial index too.
    return [
        webhook_deliveries.c.worker_failures > 0,
        webhook_deliveries.c.worker_failures >= at_least,
        webhook_deliveries.c.status == DELIVERY_PENDING,
    ]


async def stuck_deliveries(conn: AsyncConnection, limit: int) -> list[StuckDelivery]:
    """Pending deliveries whose last ``STUCK_AFTER`` attempts or more failed inside Kassa."""
    rows = await conn.execute(
        select(
            webhook_deliveries.c.seq,
            webhook_deliveries.c.tenant_id,
            webhook_deliveries.c.endpoint_id,
            events.c.id,
            webhook_deliveries.c.attempts,
            webhook_deliveries.c.worker_failures,
            webhook_deliveries.c.worker_error,
            webhook_deliveries.c.next_attempt_at,
        )
        .outerjoin(events, events.c.seq == webhook_deliveries.c.event_seq)
        .where(*_failing(STUCK_AFTER))
        .order_by(webhook_deliveries.c.seq)
        .limit(limit)
    )
    return [StuckDelivery(*row) for row in rows]


async def failing_counts(conn: AsyncConnection) -> tuple[int, int]:
    """How many pending deliveries last failed inside Kassa, and how many of them are stuck."""
    stuck = case((webhook_deliveries.c.worker_failures >= STUCK_AFTER, 1), else_=0)
    row = (
        await conn.execute(
            select(func.count(), func.coalesce(func.sum(stuck), 0)).where(*_failing())
        )
    ).one()
    return int(row[0]), int(row[1])


async def pending_backlog(conn: AsyncConnection) -> tuple[int, datetime | None]:
    """How many deliveries are pending, and when the most overdue of them came due."""
    row = (
        await conn.execute(
            select(func.count(), func.min(webhook_deliveries.c.next_attempt_at)).where(
                webhook_deliveries.c.status == DELIVERY_PENDING
            )
        )
    ).one()
    oldest: datetime | None = row[1]
    return int(row[0]), oldest
