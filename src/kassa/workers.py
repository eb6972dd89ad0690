"""The background work: webhook delivery, payouts (expiry, rails, recovery) and closing the
checkout sessions whose time ran out.

``kassa worker`` runs it; so does each ``kassa serve`` process when ``KASSA_WORKER`` says so
(by default on the SQLite default only). Any number may run at once: they share the work through
the database and never do one thing twice. An item the work keeps failing at backs off on its
own and, once stuck, is listed by ``kassa stuck`` (``stuck`` here).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from kassa.checkouts.sweep import CheckoutSweeper
from kassa.config import Settings
from kassa.kit.clock import Clock
from kassa.kit.db import Backend, Database
from kassa.kit.secretbox import SecretBox
from kassa.payouts import failures as payout_failures
from kassa.payouts.connectors import Connector, Manual, Sandbox
from kassa.payouts.repository import StuckPayout
from kassa.payouts.worker import PayoutWorker
from kassa.webhooks import queue_repository as webhook_queue
from kassa.webhooks.worker import Worker


def runs_in_serve(settings: Settings, backend: Backend) -> bool:
    """Whether ``kassa serve`` does the background work itself: by default on the SQLite
    default only (on PostgreSQL, run ``kassa worker`` processes beside the API)."""
    if settings.worker == "auto":
        return backend is Backend.SQLITE
    return settings.worker == "on"


def default_connectors(db: Database, settings: Settings) -> dict[str, Connector]:
    return {
        "manual": Manual(),
        "sandbox": Sandbox(db, timedelta(seconds=settings.sandbox_delay_seconds)),
    }


async def run(
    db: Database,
    box: SecretBox,
    clock: Clock,
    settings: Settings,
    connectors: dict[str, Connector],
    stop: asyncio.Event,
    *,
    batch_size: int = 50,
    idle_seconds: float = 1.0,
) -> None:
    """Deliver webhooks, move payouts and close past-due checkout sessions until ``stop`` is
    set (what is in flight finishes)."""
    payouts = PayoutWorker(db, clock, connectors, batch_size=batch_size)
    checkouts = CheckoutSweeper(db, clock, batch_size=batch_size)
    async with Worker(
        db,
        box,
        clock,
        allowed_hosts=settings.webhook_allowed_hosts,
        timeout_seconds=settings.webhook_timeout_seconds,
        batch_size=batch_size,
    ) as webhooks:
        await asyncio.gather(
            webhooks.run(stop, idle_seconds),
            payouts.run(stop, idle_seconds),
            checkouts.run(stop, idle_seconds),
        )


@dataclass(frozen=True)
class Stuck:
    """What the background work keeps failing at, for an operator."""

    payouts: list[StuckPayout]
    deliveries: list[webhook_queue.StuckDelivery]


async def stuck(db: Database, limit: int) -> Stuck:
    """The stuck payouts and webhook deliveries (up to ``limit`` of each), oldest first."""
    async with db.read() as conn:
        return Stuck(
            payouts=await payout_failures.stuck(conn, limit),
            deliveries=await webhook_queue.stuck_deliveries(conn, limit),
        )
