"""Payout rails: handing a PROCESSING payout to its connector, asking the connector about it,
and recording what it answered.

A connector is called with no database transaction open, under one deadline per call; what it
answered is recorded in a transaction of its own (through ``payouts.engine``). ``submit_moved``
is what a request does right after a payout's move to PROCESSING committed; the payout worker
asks (``ask``) and records the answer (``engine.record_answer``) the same way, and hands a
payout over again when its rail never got it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.clock import Clock
from kassa.kit.db import Database
from kassa.kit.dberrors import error_summary
from kassa.payouts import engine, repository
from kassa.payouts.connectors import Connector, Outcome, PayoutRef, ReceiptAhead, Submitted
from kassa.payouts.repository import Payout

CONNECTOR_TIMEOUT_SECONDS = 10.0

log = structlog.get_logger("kassa.payouts")


@dataclass(frozen=True)
class Processing:
    """A PROCESSING payout as the rails see it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    connector: str
    reference: str | None
    processing_since: datetime
    ref: PayoutRef
    worker_failures: int = 0  # the worker's failures at it in a row (kassa.payouts.failures)


def _processing(payout: Payout) -> Processing:
    return Processing(
        id=payout.id,
        tenant_id=payout.tenant_id,
        connector=payout.connector,
        reference=payout.connector_reference,
        processing_since=payout.updated_at,
        ref=PayoutRef(payout.id, payout.amount, payout.currency),
        worker_failures=payout.worker_failures,
    )


async def due_checks(conn: AsyncConnection, now: datetime, limit: int) -> list[Processing]:
    return [_processing(payout) for payout in await repository.due_checks(conn, now, limit)]


async def hand_over(
    connector: Connector, payout: Processing, now: datetime, timeout_seconds: float
) -> Submitted:
    """Hand the payout to its rail (idempotent per payout); the rail's receipt."""
    async with asyncio.timeout(timeout_seconds):
        return await connector.submit(payout.ref, now)


async def ask(
    connector: Connector,
    payout: Processing,
    now: datetime,
    *,
    timeout_seconds: float,
    recover_after: timedelta,
) -> Outcome | Submitted:
    """The rail's answer, under one deadline: an outcome, or its receipt when it never got the
    payout (then it is handed over again)."""
    async with asyncio.timeout(timeout_seconds):
        if payout.reference is None:
            outcome = await connector.look_up(payout.ref, now)
            if outcome.reference is None:  # the rail never got it: hand it over again
                return await hand_over(connector, payout, now, timeout_seconds)
            return outcome
        if now - payout.processing_since >= recover_after:
            return await connector.look_up(payout.ref, now)
        return await connector.poll(payout.ref, now)


def receipts_ahead(
    connectors: Mapping[str, Connector], payout_id: uuid.UUID, now: datetime
) -> dict[str, Submitted]:
    """The receipts that connectors give without a call (``ReceiptAhead``), by connector, for a
    move of the payout to PROCESSING: the move keeps the one of the payout's rail."""
    return {
        name: connector.receipt(payout_id, now)
        for name, connector in connectors.items()
        if isinstance(connector, ReceiptAhead)
    }


async def submit_moved(
    db: Database,
    connectors: Mapping[str, Connector],
    clock: Clock,
    found: Payout,
    timeout_seconds: float = CONNECTOR_TIMEOUT_SECONDS,
) -> None:
    """Hand a payout that just became PROCESSING (as its move returned it) to its connector,
    outside any transaction. If the connector fails or times out, the payout stays PROCESSING
    and the worker recovers it. A payout that has its rail's receipt already (kept with the
    move: ``receipts_ahead``) is not handed over again."""
    if found.connector_reference is not None:
        return
    payout = _processing(found)
    connector = connectors.get(payout.connector)
    if connector is None:
        log.error("payout_connector_unknown", payout_id=str(payout.id), name=payout.connector)
        return
    try:
        submitted = await hand_over(connector, payout, clock.now(), timeout_seconds)
    except Exception as error:  # noqa: BLE001 - whatever the rail does, the worker recovers
        # The kind of failure only: a rail's message may quote the payout's details.
        log.warning(
            "payout_submit_failed",
            payout_id=str(payout.id),
            error=error_summary("submit", error),
        )
        return
    await engine.record_submission(db, payout.id, submitted.reference, submitted.check_at)
