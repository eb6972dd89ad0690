"""The payout worker: expires PENDING payouts left too long, asks the rails about PROCESSING
ones, and recovers payouts whose submission was never recorded.

Every change it makes goes through the payout service in one transaction that locks the payout
and checks its status first, so two workers racing over one payout change it once: the second
finds it no longer PENDING (or PROCESSING) and leaves it. Connector calls are made with no
transaction open. Time comes from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from datetime import timedelta

import structlog
from sqlalchemy.exc import SQLAlchemyError

from kassa.kit.clock import Clock
from kassa.kit.db import Database
from kassa.payouts import service
from kassa.payouts.connectors import Connector, Outcome

log = structlog.get_logger("kassa.payouts")


class PayoutWorker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        connectors: Mapping[str, Connector],
        *,
        batch_size: int = 50,
        recheck: timedelta = timedelta(seconds=30),
        recover_after: timedelta = service.RECOVER_AFTER,
    ) -> None:
        self.db = db
        self.clock = clock
        self.connectors = connectors
        self.batch_size = batch_size
        self.recheck = recheck
        self.recover_after = recover_after

    async def run_once(self) -> int:
        """One pass: how many payouts it changed or checked."""
        now = self.clock.now()
        async with self.db.write() as conn:
            expired = await service.expire_due(conn, now, self.batch_size)
        async with self.db.read() as conn:
            due = await service.due_checks(conn, now, self.batch_size)
        for payout in due:
            await self._check(payout)
        return expired + len(due)

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once()
            except (SQLAlchemyError, OSError) as error:
                log.warning("payout_worker_failed", error=str(error))
                done = 0
            except Exception:  # a bug: log it and keep working
                log.exception("payout_worker_crashed")
                done = 0
            if done == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)

    async def _check(self, payout: service.Processing) -> None:
        clock_now = self.clock.now()
        connector = self.connectors.get(payout.connector)
        if connector is None:
            log.error("payout_connector_unknown", payout_id=str(payout.id), name=payout.connector)
            return
        try:
            if payout.reference is None:
                outcome = await connector.look_up(payout.ref, clock_now)
                if outcome.reference is None:  # the rail never got it: hand it over again
                    submitted = await connector.submit(payout.ref, clock_now)
                    async with self.db.write() as conn:
                        await service.record_submission(conn, payout.id, submitted)
                    return
            elif clock_now - payout.processing_since >= self.recover_after:
                outcome = await connector.look_up(payout.ref, clock_now)
            else:
                outcome = await connector.poll(payout.ref, clock_now)
        except Exception as error:  # noqa: BLE001 - whatever the rail does: ask again later
            log.warning("payout_connector_failed", payout_id=str(payout.id), error=str(error))
            outcome = Outcome("PROCESSING", reference=payout.reference)
        async with self.db.write() as conn:
            await service.apply_outcome(conn, payout, outcome, clock_now, self.recheck)
