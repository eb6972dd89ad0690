"""Payouts: PREVIEW -> PENDING -> PROCESSING -> COMPLETED | FAILED, or CANCELLED before PROCESSING.

A PREVIEW fixes the fee and moves no money. PENDING re-checks everything and places one hold of
amount + fee on the wallet's cash. PROCESSING hands the payout to its connector (outside the
database transaction: see ``rails``). COMPLETED captures the hold in one journal transaction
(wallet -> ``payouts_clearing`` for the amount, wallet -> ``fees`` for the fee); FAILED and
CANCELLED release it. Each change commits with its event.

These are the rules as SQLite runs them (and the PostgreSQL worker's expiry). On PostgreSQL a
change posted through the API, and a rail's final outcome, go through the functions of
``engine_pg``, which apply the same rules in the same order and refuse in the same words (the
error builders here); ``tests/payouts/test_parity.py`` runs one table of cases through both.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import service as events
from kassa.instruments import service as instruments
from kassa.kit.clock import isoformat
from kassa.kit.errors import Forbidden, NotFound
from kassa.kit.pagination import Page, split_page
from kassa.ledger import service as ledger
from kassa.ledger.errors import CurrencyMismatch, InsufficientFunds
from kassa.payouts import options as payment_options
from kassa.payouts import repository
from kassa.payouts.connectors import Outcome
from kassa.payouts.errors import InstrumentNotVerified, InvalidStatusTransition, PayoutExpired
from kassa.payouts.repository import Expiring, Payout
from kassa.payouts.schemas import NewPayout, PayoutOut, PayoutStatus
from kassa.references import service as references
from kassa.wallets import repository as wallet_repository
from kassa.wallets import rules
from kassa.wallets import service as wallets

# A PROCESSING payout whose submission was never recorded is looked up after this; so is one
# its rail has said nothing about for this long.
RECOVER_AFTER = timedelta(minutes=10)

_NEXT: dict[str, list[PayoutStatus]] = {
    "PREVIEW": ["PENDING", "CANCELLED"],
    "PENDING": ["PROCESSING", "CANCELLED"],
    "PROCESSING": [],
    "COMPLETED": [],
    "FAILED": [],
    "CANCELLED": [],
}
# A manual payout's outcome, posted by the merchant (it needs the scope payouts:settle).
MANUAL_OUTCOMES: list[PayoutStatus] = ["COMPLETED", "FAILED"]
SETTLE_SCOPE = "payouts:settle"


def next_status(payout: Payout) -> list[PayoutStatus]:
    """The statuses a payout may move to now (a manual payout in PROCESSING: its outcome)."""
    if payout.status == "PROCESSING" and payout.connector == "manual":
        return list(MANUAL_OUTCOMES)
    return list(_NEXT[payout.status])


def _out(payout: Payout) -> PayoutOut:
    return PayoutOut.from_row(payout, next_status(payout))


def history_entry(status: str, now: datetime, reason: str | None = None) -> dict[str, Any]:
    return {"status": status, "at": isoformat(now), "reason": reason}


def currency_mismatch(wallet_currency: str, currency: str) -> CurrencyMismatch:
    return CurrencyMismatch(f"the wallet holds {wallet_currency}, not {currency}")


def no_instrument(instrument_id: uuid.UUID) -> NotFound:
    return NotFound(f"the wallet's customer has no payment instrument {instrument_id}")


def settle_refused() -> Forbidden:
    return Forbidden(f"posting a payout's outcome needs the scope {SETTLE_SCOPE}")


def invalid_transition(payout: Payout, target: str) -> InvalidStatusTransition:
    allowed = next_status(payout)
    return InvalidStatusTransition(
        f"a {payout.status} payout can move to {', '.join(allowed) or 'nothing'}, not {target}"
    )


def insufficient_funds(payout: Payout) -> InsufficientFunds:
    total = payout.amount + payout.fee_total
    return InsufficientFunds(
        f"the wallet has less than {total} minor units (amount and fee) available"
    )


async def _payout(
    conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID, *, lock: bool = False
) -> Payout:
    found = await repository.get_payout(conn, tenant_id, payout_id, lock=lock)
    if found is None:
        raise NotFound(f"payout {payout_id} not found")
    return found


async def create(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    body: NewPayout,
    now: datetime,
    preview_ttl: timedelta,
) -> PayoutOut:
    """A PREVIEW: checks the payout could go and fixes its fee; no money moves."""
    wallet = await wallets.get_wallet(conn, tenant_id, body.wallet_id, now)
    refused = rules.refusal(
        status=wallet.status,
        frozen_until=wallet.frozen_until,
        wallet_currency=wallet.currency,
        currency=wallet.currency,  # asked for another: refused below, in the payout's words
        refuse_frozen=True,
        now=now,
    )
    if refused is not None:  # a payout that could not go now is not previewed either
        raise rules.wallet_error(refused, wallet.id)
    if body.currency is not None and body.currency != wallet.currency:
        raise currency_mismatch(wallet.currency, body.currency)
    instrument = await instruments.find(conn, tenant_id, body.instrument_id)
    if instrument is None or instrument.customer_id != wallet.customer_id:
        raise no_instrument(body.instrument_id)
    tenant_options = await payment_options.get_options(conn, tenant_id)
    option = payment_options.find_option(tenant_options, body.payment_option)
    payment_options.check_option(option, wallet.currency, body.amount, instrument.type)
    fee = payment_options.fee_for(option, body.amount)
    await references.claim(conn, tenant_id, body.reference)
    payout_id = uuid.uuid4()
    fees = [{"amount": fee, "currency": wallet.currency, "reason": "WITHDRAWAL_FEE"}] if fee else []
    await repository.insert_payout(
        conn,
        {
            "id": payout_id,
            "tenant_id": tenant_id,
            "wallet_id": wallet.id,
            "customer_id": wallet.customer_id,
            "instrument_id": instrument.id,
            "payment_option": option.code,
            "connector": option.connector,
            "amount": body.amount,
            "currency": wallet.currency,
            "fees": fees,
            "fee_total": fee,
            "status": "PREVIEW",
            "reference": body.reference,
            "description": body.description,
            "metadata": body.metadata,
            "expires_at": now + preview_ttl,
            "history": [history_entry("PREVIEW", now)],
            "created_at": now,
            "updated_at": now,
        },
    )
    payout = _out(await _payout(conn, tenant_id, payout_id))
    await events.record(conn, tenant_id, "payout.created", payout, now)
    return payout


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID) -> PayoutOut:
    return _out(await _payout(conn, tenant_id, payout_id))


async def list_payouts(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    status: str | None,
    customer_id: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
    wallet_id: uuid.UUID | None = None,
) -> Page[PayoutOut]:
    # A filter names a wallet: one the tenant does not have is 404, as everywhere.
    if (
        wallet_id is not None
        and await wallet_repository.wallet_seq(conn, tenant_id, wallet_id) is None
    ):
        raise NotFound(f"wallet {wallet_id} not found")
    after = None if starting_after is None else await _payout(conn, tenant_id, starting_after)
    found = await repository.list_payouts(
        conn,
        tenant_id,
        status=status,
        customer_id=customer_id,
        wallet_id=wallet_id,
        after=after,
        limit=limit + 1,
    )
    page, has_more = split_page(found, limit)
    return Page[PayoutOut](data=[_out(payout) for payout in page], has_more=has_more)


async def change_status(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    target: PayoutStatus,
    reason: str | None,
    now: datetime,
) -> PayoutOut:
    """Move a payout to ``target`` if that is one of its ``next_status`` now. Who may post a
    manual payout's outcome (``MANUAL_OUTCOMES``) is the caller's to check."""
    payout = await _payout(conn, tenant_id, payout_id, lock=True)
    allowed = next_status(payout)
    cancelled_by_expiry = ("CANCELLED", "EXPIRED", None)
    was_expired = (payout.status, payout.status_reason, payout.hold_id) == cancelled_by_expiry
    if target == "PENDING" and was_expired and payout.expires_at <= now:
        # The worker cancelled the expired preview already: the same answer as before it did.
        raise expired(payout)
    if target not in allowed:
        raise invalid_transition(payout, target)
    values: dict[str, Any] = {}
    if target == "PENDING":
        values = await _hold(conn, payout, now)
    elif target == "CANCELLED" and payout.hold_id is not None:
        await ledger.release_hold(conn, tenant_id, payout.hold_id, now)
    elif target == "FAILED":
        await ledger.release_hold(conn, tenant_id, _hold_id(payout), now)
        reason = reason or "FAILED"
    elif target == "PROCESSING":
        # The connector is called after this commits; if its answer is never recorded, the
        # worker looks the payout up after RECOVER_AFTER.
        values["next_check_at"] = now + RECOVER_AFTER
    elif target == "COMPLETED":
        values["transaction_id"] = await _capture(conn, payout, now)
    if target in MANUAL_OUTCOMES:
        values["next_check_at"] = None
    return await _move(conn, payout, target, reason, now, values)


def _hold_id(payout: Payout) -> uuid.UUID:
    """The hold of a payout past PENDING (it has one from PENDING on)."""
    if payout.hold_id is None:
        raise RuntimeError(f"payout {payout.id} is {payout.status} without a hold")
    return payout.hold_id


async def _capture(conn: AsyncConnection, payout: Payout, now: datetime) -> uuid.UUID:
    """Spend the hold in one journal transaction: the amount to payouts_clearing, the fee to
    fees."""
    destinations = [("payouts_clearing", payout.amount)]
    if payout.fee_total:
        destinations.append(("fees", payout.fee_total))
    metadata = {"payout_id": str(payout.id)}
    if payout.reference is not None:
        metadata["payout_reference"] = payout.reference
    posted = await ledger.capture_hold(
        conn,
        ledger.Capture(
            tenant_id=payout.tenant_id,
            hold_id=_hold_id(payout),
            destinations=destinations,
            now=now,
            # Identified by its hold and payout, never by a reference: a capture cannot be
            # refused for one (the payout's own reference was claimed when it was created).
            reference=None,
            description=payout.description or f"payout {payout.id}",
            metadata=metadata,
        ),
    )
    return posted.transaction_id


def expired(payout: Payout) -> PayoutExpired:
    return PayoutExpired(f"the preview expired at {isoformat(payout.expires_at)}")


async def _hold(conn: AsyncConnection, payout: Payout, now: datetime) -> dict[str, Any]:
    """Every check a PENDING payout passes, then its hold of amount + fee."""
    if payout.expires_at <= now:
        raise expired(payout)
    wallet = await wallets.lock_for_change(conn, payout.tenant_id, payout.wallet_id, now)
    refused = rules.refusal(
        status=wallet.status,
        frozen_until=wallet.frozen_until,
        wallet_currency=wallet.currency,
        currency=payout.currency,
        refuse_frozen=True,
        now=now,
    )
    if refused is not None:  # the same rules as an immediate withdrawal's
        raise rules.wallet_error(refused, wallet.id, payout.currency)
    instrument = await instruments.find(conn, payout.tenant_id, payout.instrument_id)
    if instrument is None:
        raise NotFound(f"payment instrument {payout.instrument_id} was deleted")
    if instrument.status != "verified":
        raise InstrumentNotVerified(f"payment instrument {instrument.id} is not verified")
    tenant_options = await payment_options.get_options(conn, payout.tenant_id)
    option = payment_options.find_option(tenant_options, payout.payment_option)
    payment_options.check_option(option, payout.currency, payout.amount, instrument.type)
    total = payout.amount + payout.fee_total
    try:
        hold_id = await ledger.place_hold(
            conn,
            ledger.HoldRequest(
                tenant_id=payout.tenant_id,
                wallet_id=payout.wallet_id,
                amount=total,
                now=now,
                reference=f"payout:{payout.id}",
            ),
        )
    except InsufficientFunds:
        raise insufficient_funds(payout) from None
    return {
        "hold_id": hold_id,
        "pending_expires_at": now + timedelta(seconds=tenant_options.pending_ttl_seconds),
    }


async def _move(
    conn: AsyncConnection,
    payout: Payout,
    target: PayoutStatus,
    reason: str | None,
    now: datetime,
    values: dict[str, Any],
) -> PayoutOut:
    """Record the payout's new status (with ``values``) in its history, and its event."""
    await repository.update_payout(
        conn,
        payout.id,
        {
            "status": target,
            "status_reason": reason,
            "history": [*payout.history, history_entry(target, now, reason)],
            "updated_at": now,
            **values,
        },
    )
    moved = _out(await _payout(conn, payout.tenant_id, payout.id))
    await events.record(conn, payout.tenant_id, f"payout.{target.lower()}", moved, now)
    return moved


async def apply_outcome(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    outcome: Outcome,
    now: datetime,
    recheck: timedelta,
) -> bool:
    """Apply what the rail said, once: only a payout still PROCESSING changes (the row is
    locked first, so of two workers with the same answer one applies it)."""
    payout = await _payout(conn, tenant_id, payout_id, lock=True)
    if payout.status != "PROCESSING":
        return False
    reference = outcome.reference or payout.connector_reference
    if outcome.status == "PROCESSING":
        rechecked = {"connector_reference": reference, "next_check_at": now + recheck}
        await repository.update_payout(conn, payout.id, rechecked)
        return False
    values: dict[str, Any] = {"connector_reference": reference, "next_check_at": None}
    if outcome.status == "COMPLETED":
        values["transaction_id"] = await _capture(conn, payout, now)
        await _move(conn, payout, "COMPLETED", None, now, values)
    else:
        await ledger.release_hold(conn, payout.tenant_id, _hold_id(payout), now)
        await _move(conn, payout, "FAILED", outcome.reason or "FAILED", now, values)
    return True


async def expire(conn: AsyncConnection, payout: Expiring, now: datetime) -> bool:
    """Cancel the payout with the reason EXPIRED, releasing a PENDING hold, once: the row is
    locked and its status checked first, so of two workers one cancels it."""
    found = await _payout(conn, payout.tenant_id, payout.id, lock=True)
    if found.status != payout.status:
        return False
    if found.hold_id is not None:
        await ledger.expire_hold(conn, found.tenant_id, found.hold_id, now)
    await _move(conn, found, "CANCELLED", "EXPIRED", now, {})
    return True
