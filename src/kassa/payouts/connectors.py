"""Payout connectors: how a payout reaches its rail, and how Kassa learns the outcome.

A connector is small: ``submit`` hands a payout to the rail (idempotent per payout: the rail
takes the payout id as its key), ``poll`` asks what the rail reports on its own, ``look_up``
asks it outright (the worker's recovery after a crash or a silent rail). Connector calls never
run inside a database transaction; the worker applies what they answer in one, exactly once.

* ``manual``: the merchant's back office pays and posts ``COMPLETED`` or ``FAILED`` itself.
* ``sandbox``: a rail for trying Kassa out. It settles a payout ``KASSA_SANDBOX_DELAY_SECONDS``
  after it was submitted: amounts ending in 13 (minor units) fail with
  ``INSUFFICIENT_FUNDS_AT_BANK``; amounts ending in 99 stay PROCESSING until looked up, then
  complete; everything else completes. It keeps its submissions in a table of its own, as an
  outside rail would keep them on its side.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, Protocol, runtime_checkable

from sqlalchemy.exc import IntegrityError

from kassa.kit.db import Database
from kassa.payouts import repository


@dataclass(frozen=True)
class Submitted:
    reference: str
    check_at: datetime  # when to ask the rail first


@dataclass(frozen=True)
class Outcome:
    status: Literal["PROCESSING", "COMPLETED", "FAILED"]
    reason: str | None = None
    reference: str | None = None  # None: the rail does not know the payout


@dataclass(frozen=True)
class PayoutRef:
    """What a connector is told about a payout."""

    id: uuid.UUID
    amount: int
    currency: str


class Connector(Protocol):
    name: str

    async def submit(self, payout: PayoutRef, now: datetime) -> Submitted: ...

    async def poll(self, payout: PayoutRef, now: datetime) -> Outcome: ...

    async def look_up(self, payout: PayoutRef, now: datetime) -> Outcome: ...


@runtime_checkable
class ReceiptAhead(Protocol):
    """A connector whose hand-over calls nothing (the manual rail: the merchant pays): its
    receipt is known before the move to PROCESSING, and kept with the move, in its transaction,
    instead of after it."""

    def receipt(self, payout_id: uuid.UUID, now: datetime) -> Submitted: ...


class Manual:
    """The merchant settles: submitting records the handover; outcomes come by API."""

    name = "manual"
    NEVER = timedelta(days=3650)

    def receipt(self, payout_id: uuid.UUID, now: datetime) -> Submitted:
        return Submitted(f"manual_{payout_id.hex}", now + self.NEVER)

    async def submit(self, payout: PayoutRef, now: datetime) -> Submitted:
        return self.receipt(payout.id, now)

    async def poll(self, payout: PayoutRef, now: datetime) -> Outcome:
        return Outcome("PROCESSING", reference=f"manual_{payout.id.hex}")

    async def look_up(self, payout: PayoutRef, now: datetime) -> Outcome:
        return await self.poll(payout, now)


class Sandbox:
    name = "sandbox"

    def __init__(self, db: Database, delay: timedelta) -> None:
        self.db = db
        self.delay = delay

    @staticmethod
    def reference(payout: PayoutRef) -> str:
        return f"sbx_{payout.id.hex}"

    async def submit(self, payout: PayoutRef, now: datetime) -> Submitted:
        try:
            async with self.db.write() as conn:
                await repository.insert_sandbox_submission(conn, payout.id, now)
        except IntegrityError:
            pass  # submitted before: the rail keys payouts by id
        submitted_at = await self._submitted_at(payout) or now
        return Submitted(self.reference(payout), submitted_at + self.delay)

    async def _submitted_at(self, payout: PayoutRef) -> datetime | None:
        async with self.db.read() as conn:
            return await repository.sandbox_submitted_at(conn, payout.id)

    async def _outcome(self, payout: PayoutRef, now: datetime, asked: bool) -> Outcome:
        submitted_at = await self._submitted_at(payout)
        if submitted_at is None:
            return Outcome("PROCESSING")  # the rail never got it
        reference = self.reference(payout)
        if payout.amount % 100 == 99:
            return Outcome("COMPLETED" if asked else "PROCESSING", reference=reference)
        if now < submitted_at + self.delay:
            return Outcome("PROCESSING", reference=reference)
        if payout.amount % 100 == 13:
            return Outcome("FAILED", "INSUFFICIENT_FUNDS_AT_BANK", reference)
        return Outcome("COMPLETED", reference=reference)

    async def poll(self, payout: PayoutRef, now: datetime) -> Outcome:
        return await self._outcome(payout, now, asked=False)

    async def look_up(self, payout: PayoutRef, now: datetime) -> Outcome:
        return await self._outcome(payout, now, asked=True)
