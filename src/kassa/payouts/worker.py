"""The payout worker: expires PENDING payouts left too long, asks the rails about PROCESSING
ones, and recovers payouts whose submission was never recorded.

Every change it makes goes through ``payouts.engine`` (the same engine as a change posted
through the API) in one transaction that checks the payout's status first (on PostgreSQL with
its row locked; SQLite has one writer), so two workers racing over one payout change it once:
the second finds it no longer PENDING (or PROCESSING) and leaves it. A success clears the
payout's past failures in the same transaction. Connector calls are made with no transaction
open, under a timeout. Time comes from the injected clock.

A pass works on its due payouts concurrently, up to ``concurrency`` at a time (the database's
pool size by default): their connector calls overlap, and the changes they record share the
SQLite writer's batches (one commit for the changes that arrive together) or PostgreSQL's pool.

Each payout is its own failure domain: its expiry, or its connector call and the transaction
that records the answer, may fail (a rail that is down, a bug, a row the ledger refuses) without
holding up the others. A failing payout is logged once per failure, with its id and the kind of
error, and left alone for a growing while (``kassa.payouts.failures``); after a few failures in
a row it is listed as stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TypeVar

import structlog
from sqlalchemy.exc import SQLAlchemyError

from kassa.kit.clock import Clock, isoformat
from kassa.kit.db import Database
from kassa.kit.dberrors import error_summary
from kassa.kit.errors import KassaError, ServiceUnavailable
from kassa.payouts import engine, failures, lifecycle, rails, repository
from kassa.payouts.connectors import Connector
from kassa.payouts.rails import Processing
from kassa.payouts.repository import Expiring

# Errors that are trouble rather than a bug in Kassa: logged without a traceback (a database
# error's text carries the statement's parameters). SQLite's own errors come from the writer
# thread of ``engine_sqlite``.
_TROUBLE = (SQLAlchemyError, sqlite3.Error, OSError, TimeoutError, KassaError)

Item = TypeVar("Item")


class PayoutWorker:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        connectors: Mapping[str, Connector],
        *,
        batch_size: int = 50,
        recheck: timedelta = timedelta(seconds=30),
        recover_after: timedelta = lifecycle.RECOVER_AFTER,
        connector_timeout_seconds: float = rails.CONNECTOR_TIMEOUT_SECONDS,
        concurrency: int | None = None,
    ) -> None:
        self.db = db
        self.clock = clock
        self.connectors = connectors
        self.batch_size = batch_size
        self.recheck = recheck
        self.recover_after = recover_after
        self.connector_timeout_seconds = connector_timeout_seconds
        # No more payouts at once than the database has pooled connections.
        self.concurrency = max(1, concurrency or db.pool_size)
        self.log = structlog.get_logger("kassa.payouts")

    async def run_once(self) -> int:
        """One pass: how many payouts it expired or checked (each one on its own: a payout
        that fails is logged and backs off, and the pass goes on with the rest)."""
        now = self.clock.now()
        async with self.db.read() as conn:
            expiring = await repository.due_expiries(conn, now, self.batch_size)
        expired = await self._each(expiring, lambda payout: self._expire(payout, now))
        async with self.db.read() as conn:
            due = await rails.due_checks(conn, now, self.batch_size)
        await self._each(due, self._check)
        return sum(expired) + len(due)

    async def _each(
        self, payouts: Sequence[Item], work: Callable[[Item], Awaitable[int | None]]
    ) -> list[int]:
        """``work`` on every payout, up to ``concurrency`` at a time; what each returned (None
        counts as 0). ``work`` deals with its own payout's failure; what it raises (the
        database is gone: ``ServiceUnavailable``) ends the pass as it did one payout at a time:
        the payouts not yet begun are left for the next pass, those under way finish, and the
        first error is raised."""
        bound = asyncio.Semaphore(self.concurrency)
        ended: list[BaseException] = []

        async def one(payout: Item) -> int:
            async with bound:
                if ended:
                    return 0
                try:
                    return await work(payout) or 0
                except BaseException as error:
                    ended.append(error)
                    raise

        done = await asyncio.gather(*(one(payout) for payout in payouts), return_exceptions=True)
        if ended:
            raise ended[0]
        return [count for count in done if isinstance(count, int)]

    async def run(self, stop: asyncio.Event, idle_seconds: float = 1.0) -> None:
        while not stop.is_set():
            try:
                done = await self.run_once()
            except (ServiceUnavailable, SQLAlchemyError, OSError) as error:  # the database
                self.log.warning("payout_worker_failed", error=type(error).__name__)
                done = 0
            except Exception:  # a bug outside any one payout: log it and keep working
                self.log.exception("payout_worker_crashed")
                done = 0
            if done == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), idle_seconds)

    async def _expire(self, payout: Expiring, now: datetime) -> int:
        try:
            expired = await engine.expire(
                self.db, payout, now, clear_failures=payout.worker_failures > 0
            )
        except ServiceUnavailable:
            raise  # the database, not this payout: the pass ends and the run loop waits
        except Exception as error:  # noqa: BLE001 - one payout's failure must not stop the rest
            await self._failed(payout.id, payout.status, "expire", error, now)
            return 0
        return int(expired)

    async def _check(self, payout: Processing) -> None:
        now = self.clock.now()
        connector = self.connectors.get(payout.connector)
        if connector is None:
            error = f"no connector {payout.connector!r}"
            await self._failed(payout.id, "PROCESSING", "connector", error, now)
            return
        try:
            answer = await rails.ask(
                connector,
                payout,
                now,
                timeout_seconds=self.connector_timeout_seconds,
                recover_after=self.recover_after,
            )
        except ServiceUnavailable:
            raise  # the database (the sandbox rail keeps its records there), not this payout
        except Exception as error:  # noqa: BLE001 - whatever the rail does: ask again later
            await self._failed(payout.id, "PROCESSING", "connector", error, now)
            return
        try:
            await engine.record_answer(
                self.db,
                payout.tenant_id,
                payout.id,
                answer,
                now,
                self.recheck,
                clear_failures=payout.worker_failures > 0,
            )
        except ServiceUnavailable:
            raise
        except Exception as error:  # noqa: BLE001 - one payout's failure must not stop the rest
            await self._failed(payout.id, "PROCESSING", "record", error, now)
            return
        if payout.worker_failures:
            self.log.info(
                "payout_work_recovered", payout_id=str(payout.id), failures=payout.worker_failures
            )

    async def _failed(
        self,
        payout_id: uuid.UUID,
        status: str,
        step: str,
        error: BaseException | str,
        now: datetime,
    ) -> None:
        """Count the failure and back off, in a transaction of its own (the failed one rolled
        back); log it once, with the payout's id and the kind of error, never its values."""
        summary = error_summary(step, error)
        bug = isinstance(error, BaseException) and not isinstance(error, _TROUBLE)
        try:
            async with self.db.write() as conn:
                failure = await failures.record(conn, payout_id, summary, now)
        except Exception as recording:  # the next pass tries the payout again
            self.log.error(
                "payout_work_failed",
                payout_id=str(payout_id),
                status=status,
                error=summary,
                not_recorded=error_summary("back off", recording),
                exc_info=error if bug else None,
            )
            if isinstance(recording, ServiceUnavailable):
                raise  # the database is gone: the pass ends there
            return
        if failure is None:
            return  # another worker failed at it too, and counted it
        self.log.log(
            logging.ERROR if failure.stuck else logging.WARNING,
            "payout_work_failed",
            payout_id=str(payout_id),
            status=status,
            error=summary,
            failures=failure.failures,
            stuck=failure.stuck,
            retry_at=isoformat(failure.retry_at),
            exc_info=error if bug else None,
        )
