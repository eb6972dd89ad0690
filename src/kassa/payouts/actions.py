"""A payout's creation and status change as a principal asks for them, shared by ``/v1`` and
the dialects (each renders the outcome in its own shape): the customer-token limits, the SCA
check, the engine, and the hand-over to the rail. One place, so that every route applies the
same rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from kassa.auth.service import Principal
from kassa.idempotency import service as idempotency
from kassa.payouts import engine, lifecycle, rails
from kassa.payouts.engine import Done
from kassa.payouts.schemas import NewPayout, PayoutOut, PayoutStatus
from kassa.sca import service as sca
from kassa.sca.schemas import ScaEventOut
from kassa.state import AppState
from kassa.wallets import lookup

SETTLE_SCOPE = lifecycle.SETTLE_SCOPE


@dataclass(frozen=True)
class AwaitingSca:
    """A move to PENDING held back for Strong Customer Authentication: the payout as it
    stands, and the SCA event to complete first. Never kept under an Idempotency-Key."""

    payout: PayoutOut
    event: ScaEventOut


def key_ttl(state: AppState) -> timedelta:
    return timedelta(hours=state.settings.idempotency_ttl_hours)


async def create(
    state: AppState,
    principal: Principal,
    body: NewPayout,
    key: idempotency.Key | None,
    now: datetime,
) -> Done:
    """A PREVIEW (or the refusal), as ``engine.create`` answers it; a customer token pays out
    of its own customer's wallets only (another's is 404, as one that does not exist)."""
    await lookup.check_owned(state.db, principal, body.wallet_id)
    ttl = timedelta(minutes=state.settings.payout_preview_minutes)
    return await engine.create(state.db, key, principal.tenant_id, body, now, ttl, key_ttl(state))


async def change_status(
    state: AppState,
    principal: Principal,
    payout_id: uuid.UUID,
    target: PayoutStatus,
    reason: str | None,
    key: idempotency.Key | None,
    now: datetime,
) -> Done | AwaitingSca:
    """Move the payout (``engine.change_status``) unless it must wait for SCA; a move to
    PROCESSING made now (not a replay) is handed to its rail, after it commits, unless the
    rail's receipt needs no call (the manual rail's: kept with the move)."""
    awaiting = await _strong_authentication(state, principal, payout_id, target, now)
    if awaiting is not None:
        return awaiting
    receipts = (
        rails.receipts_ahead(state.connectors, payout_id, now) if target == "PROCESSING" else {}
    )
    done = await engine.change_status(
        state.db,
        key,
        principal.tenant_id,
        payout_id,
        target,
        reason,
        now,
        key_ttl(state),
        may_settle=SETTLE_SCOPE in principal.scopes,
        receipts=receipts,
    )
    if target == "PROCESSING" and done.payout is not None:
        await rails.submit_moved(state.db, state.connectors, state.clock, done.payout)
    return done


async def _strong_authentication(
    state: AppState, principal: Principal, payout_id: uuid.UUID, target: str, now: datetime
) -> AwaitingSca | None:
    """For a tenant with an SCA policy, or a customer token: read the payout (another
    customer's is 404) and, for a move of a PREVIEW to PENDING that the policy says needs SCA
    with no completed SCA event, the event to complete; None to go on with the move."""
    if principal.sca_policy is None and principal.customer_id is None:
        return None  # the common case costs nothing
    async with state.db.read() as conn:
        found = await lifecycle.get(conn, principal.tenant_id, payout_id)
    if not principal.owns(found.customer_id):
        raise lifecycle.not_found(payout_id)
    if target != "PENDING" or found.status != "PREVIEW":
        return None  # the move itself answers (a replay, or why it cannot go)
    event = await sca.event_for_pending(
        state.db, principal, found.id, found.customer_id, found.amount, found.currency, now
    )
    return None if event is None else AwaitingSca(found, event)
