"""Retention: removing old events with their webhook deliveries and attempts (``kassa purge``).

The journal is the record of money and is never purged; events are notifications of changes,
kept so that receivers can catch up and operators can see what was sent. An event older than
the cut-off goes with its deliveries and their attempts, unless one of its deliveries is still
pending: that one stays until it succeeds, fails or is canceled.

Events are walked in ``seq`` order (the order they were written, so oldest first) in batches,
each removed in a short transaction of its own, and the walk stops at the first batch that
reaches the cut-off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events.tables import events
from kassa.kit.db import Database
from kassa.webhooks.tables import DELIVERY_PENDING, webhook_attempts, webhook_deliveries

BATCH = 1000


@dataclass(frozen=True)
class Purged:
    events: int = 0
    deliveries: int = 0
    attempts: int = 0
    kept: int = 0  # old events kept because a delivery of theirs is still pending

    def __add__(self, other: Purged) -> Purged:
        return Purged(
            self.events + other.events,
            self.deliveries + other.deliveries,
            self.attempts + other.attempts,
            self.kept + other.kept,
        )


async def purge(db: Database, before: datetime, *, dry_run: bool = False) -> Purged:
    """Remove (or, with ``dry_run``, only count) events created before ``before``."""
    total, after_seq = Purged(), 0
    while True:
        async with db.read() if dry_run else db.write() as conn:
            rows = (
                await conn.execute(
                    select(events.c.seq, events.c.created_at)
                    .where(events.c.seq > after_seq)
                    .order_by(events.c.seq)
                    .limit(BATCH)
                )
            ).all()
            if not rows:
                return total
            after_seq = rows[-1].seq
            old = [row.seq for row in rows if row.created_at < before]
            if old:
                total += await _remove(conn, old, dry_run)
        if len(old) < len(rows):  # this batch reached the cut-off
            return total


async def _remove(conn: AsyncConnection, event_seqs: list[int], dry_run: bool) -> Purged:
    pending = set(
        (
            await conn.execute(
                select(webhook_deliveries.c.event_seq)
                .where(
                    webhook_deliveries.c.event_seq.in_(event_seqs),
                    webhook_deliveries.c.status == DELIVERY_PENDING,
                )
                .distinct()
            )
        ).scalars()
    )
    going = [seq for seq in event_seqs if seq not in pending]
    if not going:
        return Purged(kept=len(pending))
    deliveries = select(webhook_deliveries.c.seq).where(webhook_deliveries.c.event_seq.in_(going))
    attempts = await _delete(
        conn, webhook_attempts, webhook_attempts.c.delivery_seq.in_(deliveries), dry_run
    )
    removed_deliveries = await _delete(
        conn, webhook_deliveries, webhook_deliveries.c.event_seq.in_(going), dry_run
    )
    removed_events = await _delete(conn, events, events.c.seq.in_(going), dry_run)
    return Purged(removed_events, removed_deliveries, attempts, len(pending))


async def _delete(conn: AsyncConnection, table: Any, condition: Any, dry_run: bool) -> int:
    if dry_run:
        return int(await conn.scalar(select(func.count()).select_from(table).where(condition)) or 0)
    return int((await conn.execute(delete(table).where(condition))).rowcount or 0)
