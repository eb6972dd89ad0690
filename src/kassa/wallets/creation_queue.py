"""Group commit for ``POST /v1/wallets`` without an Idempotency-Key.

A creation that finds a slot free goes at once, alone, as one statement that commits itself
(``service.create_wallets`` given the database). Those that arrive while every slot is busy wait
in arrival order, and the next free slot takes the first one's tenant and every waiting creation
of that tenant (up to ``MAX_BATCH_WALLETS``) to ``service.create_wallets`` together: one
statement and one commit for all of them, as the bulk import sends them. Each is still created
or refused on its own, by the same rules: of two requests for one customer and currency in one
batch the first is created and the second refused naming it, as when they race.

Slots: on PostgreSQL one per pooled connection; on SQLite one (its writers are serialised, so
more would only wait for the database's lock instead of here, one commit each).

If the statement fails as a whole (the database lost, a bug), every creation in it fails with
that error: a statement that was refused wrote nothing, and one whose connection was lost may
have, so none is sent again (its client may: a second try is answered ``wallet_exists`` naming
the wallet if the first took).
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from dataclasses import dataclass, field
from datetime import datetime

from kassa.kit.db import Backend, Database
from kassa.wallets import service
from kassa.wallets.errors import WalletExists
from kassa.wallets.schemas import MAX_BATCH_WALLETS, NewWallet, WalletOut


@dataclass
class _Waiting:
    tenant_id: uuid.UUID
    body: NewWallet
    now: datetime
    future: asyncio.Future[service.Creation] = field(repr=False)


class CreationQueue:
    """Gathers one process's concurrent wallet creations into batches; see the module's text."""

    def __init__(self, db: Database, *, slots: int, max_batch: int = MAX_BATCH_WALLETS) -> None:
        self.db = db
        self._slots = slots
        self._max_batch = max_batch
        self._waiting: list[_Waiting] = []
        self._busy = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.statements = 0  # batches sent: fewer than creations when busy

    async def create(self, tenant_id: uuid.UUID, body: NewWallet, now: datetime) -> WalletOut:
        """Create one wallet once its batch has committed; a refusal raises."""
        future: asyncio.Future[service.Creation] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(tenant_id, body, now, future))
        if self._busy < self._slots:
            self._send_next()
        # A request cancelled meanwhile (its client went away) cancels only its wait: the
        # wallet is made, and a retry is answered ``wallet_exists`` naming it.
        done = await future
        if isinstance(done, WalletExists):
            raise done
        return done

    def _send_next(self) -> None:
        tenant_id = self._waiting[0].tenant_id
        batch: list[_Waiting] = []
        left: list[_Waiting] = []
        for waiting in self._waiting:
            if waiting.tenant_id == tenant_id and len(batch) < self._max_batch:
                batch.append(waiting)
            else:
                left.append(waiting)
        self._waiting = left
        self._busy += 1
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Waiting]) -> None:
        try:
            self.statements += 1
            # Every request of the batch had arrived by the latest of their clocks' readings.
            now = max(waiting.now for waiting in batch)
            results = await service.create_wallets(
                self.db, batch[0].tenant_id, [waiting.body for waiting in batch], now
            )
            for waiting, result in zip(batch, results, strict=True):
                if not waiting.future.done():
                    waiting.future.set_result(result)
        except BaseException as error:
            # Whatever went wrong, no request may wait forever.
            for waiting in batch:
                if waiting.future.done():
                    continue
                if isinstance(error, asyncio.CancelledError):
                    waiting.future.cancel()
                else:
                    waiting.future.set_exception(error)
            if not isinstance(error, Exception):
                raise
        finally:
            self._busy -= 1
            if self._waiting and self._busy < self._slots:
                self._send_next()


# One queue per database (so per process).
_queues: weakref.WeakKeyDictionary[Database, CreationQueue] = weakref.WeakKeyDictionary()


def queue_of(db: Database) -> CreationQueue:
    found = _queues.get(db)
    if found is None:
        slots = db.pool_size if db.backend is Backend.POSTGRESQL else 1
        found = _queues[db] = CreationQueue(db, slots=slots)
    return found
