"""Payouts: PREVIEW -> PENDING -> PROCESSING -> COMPLETED | FAILED, or CANCELLED before PROCESSING.

A PREVIEW fixes the fee and moves no money. PENDING re-checks everything and places one hold of
amount + fee on the wallet's cash. PROCESSING hands the payout to its connector (outside the
database transaction: see ``endpoints``). COMPLETED captures the hold in one journal
transaction (wallet -> ``payouts_clearing`` for the amount, wallet -> ``fees`` for the fee);
FAILED and CANCELLED release it. Each change commits with its event.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import service as events
from kassa.instruments import service as instruments
from kassa.kit.clock import isoformat
from kassa.kit.errors import Forbidden, NotFound
from kassa.kit.money import MAX_MINOR_UNITS
from kassa.kit.pagination import Page, split_page
from kassa.ledger import service as ledger
from kassa.ledger.errors import CurrencyMismatch, InsufficientFunds
from kassa.payouts.connectors import Outcome, PayoutRef, Submitted
from kassa.payouts.errors import (
    InstrumentNotVerified,
    InvalidStatusTransition,
    PaymentOptionRefused,
    PayoutExpired,
    UnknownPaymentOption,
)
from kassa.payouts.schemas import (
    NewPayout,
    PaymentOption,
    PaymentOptions,
    PayoutOut,
    PayoutStatus,
)
from kassa.payouts.tables import payment_options, payouts
from kassa.references import service as references
from kassa.wallets import repository as wallet_repository
from kassa.wallets import service as wallets
from kassa.wallets.errors import WalletClosed, WalletFrozen

SETTLE_SCOPE = "payouts:settle"

_NEXT: dict[str, list[PayoutStatus]] = {
    "PREVIEW": ["PENDING", "CANCELLED"],
    "PENDING": ["PROCESSING", "CANCELLED"],
    "PROCESSING": [],
    "COMPLETED": [],
    "FAILED": [],
    "CANCELLED": [],
}
_MANUAL_OUTCOMES: list[PayoutStatus] = ["COMPLETED", "FAILED"]


def next_status(row: Any) -> list[PayoutStatus]:
    """The statuses a payout may move to now (a manual payout in PROCESSING: its outcome)."""
    if row.status == "PROCESSING" and row.connector == "manual":
        return list(_MANUAL_OUTCOMES)
    return list(_NEXT[row.status])


def _out(row: Any) -> PayoutOut:
    return PayoutOut.from_row(row, next_status(row))


# ---- payment options -------------------------------------------------------------------------


async def get_options(conn: AsyncConnection, tenant_id: uuid.UUID) -> PaymentOptions:
    row = (
        await conn.execute(select(payment_options).where(payment_options.c.tenant_id == tenant_id))
    ).first()
    if row is None:
        return PaymentOptions()
    return PaymentOptions.model_validate(
        {"options": row.options, "pending_ttl_seconds": row.pending_ttl_seconds}
    )


async def put_options(
    conn: AsyncConnection, tenant_id: uuid.UUID, body: PaymentOptions, now: datetime
) -> PaymentOptions:
    values = {
        "options": [option.model_dump(mode="json") for option in body.options],
        "pending_ttl_seconds": body.pending_ttl_seconds,
        "updated_at": now,
    }
    # One statement, so two first PUTs racing cannot both insert: the last one wins, as it
    # would if they came one after the other.
    upsert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    statement = upsert(payment_options).values(tenant_id=tenant_id, **values)
    await conn.execute(
        statement.on_conflict_do_update(index_elements=[payment_options.c.tenant_id], set_=values)
    )
    return await get_options(conn, tenant_id)


def _option(options: PaymentOptions, code: str) -> PaymentOption:
    for option in options.options:
        if option.code == code:
            return option
    raise UnknownPaymentOption(f"the tenant has no payment option {code}")


def _check_option(option: PaymentOption, currency: str, amount: int, instrument_type: str) -> None:
    if currency not in option.currencies:
        raise PaymentOptionRefused(f"{option.code} does not pay out {currency}")
    if not option.min_amount <= amount <= option.max_amount:
        raise PaymentOptionRefused(
            f"{option.code} pays out {option.min_amount} to {option.max_amount} minor units"
        )
    if instrument_type not in option.instrument_types:
        raise PaymentOptionRefused(f"{option.code} does not pay to a {instrument_type}")


# ---- payouts ---------------------------------------------------------------------------------


async def create(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    body: NewPayout,
    now: datetime,
    preview_ttl: timedelta,
) -> PayoutOut:
    """A PREVIEW: checks the payout could go and fixes its fee; no money moves."""
    wallet = await wallets.get_wallet(conn, tenant_id, body.wallet_id, now)
    if body.currency is not None and body.currency != wallet.currency:
        raise CurrencyMismatch(f"the wallet holds {wallet.currency}, not {body.currency}")
    instrument = await instruments.find(conn, tenant_id, body.instrument_id)
    if instrument is None or instrument.customer_id != wallet.customer_id:
        raise NotFound(f"the wallet's customer has no payment instrument {body.instrument_id}")
    option = _option(await get_options(conn, tenant_id), body.payment_option)
    _check_option(option, wallet.currency, body.amount, instrument.type)
    fee = option.fee.fee(body.amount)
    if body.amount + fee > MAX_MINOR_UNITS:
        raise PaymentOptionRefused("the amount and its fee are above 10^15 minor units")
    await references.claim(conn, tenant_id, body.reference)
    payout_id = uuid.uuid4()
    fees = [{"amount": fee, "currency": wallet.currency, "reason": "WITHDRAWAL_FEE"}] if fee else []
    await conn.execute(
        insert(payouts).values(
            id=payout_id,
            tenant_id=tenant_id,
            wallet_id=wallet.id,
            customer_id=wallet.customer_id,
            instrument_id=instrument.id,
            payment_option=option.code,
            connector=option.connector,
            amount=body.amount,
            currency=wallet.currency,
            fees=fees,
            fee_total=fee,
            status="PREVIEW",
            reference=body.reference,
            description=body.description,
            metadata=body.metadata,
            expires_at=now + preview_ttl,
            history=[_history("PREVIEW", now)],
            created_at=now,
            updated_at=now,
        )
    )
    payout = _out(await _row(conn, tenant_id, payout_id))
    await events.record(conn, tenant_id, "payout.created", payout, now)
    return payout


def _history(status: str, now: datetime, reason: str | None = None) -> dict[str, Any]:
    return {"status": status, "at": isoformat(now), "reason": reason}


async def _row(
    conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID, *, lock: bool = False
) -> Any:
    statement = select(payouts).where(payouts.c.tenant_id == tenant_id, payouts.c.id == payout_id)
    if lock and conn.dialect.name == "postgresql":
        statement = statement.with_for_update()
    row = (await conn.execute(statement)).first()
    if row is None:
        raise NotFound(f"payout {payout_id} not found")
    return row


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID) -> PayoutOut:
    return _out(await _row(conn, tenant_id, payout_id))


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
    statement = select(payouts).where(payouts.c.tenant_id == tenant_id)
    if status is not None:
        statement = statement.where(payouts.c.status == status)
    if customer_id is not None:
        statement = statement.where(payouts.c.customer_id == customer_id)
    if wallet_id is not None:
        # A filter names a wallet: one the tenant does not have is 404, as everywhere.
        if await wallet_repository.wallet_seq(conn, tenant_id, wallet_id) is None:
            raise NotFound(f"wallet {wallet_id} not found")
        statement = statement.where(payouts.c.wallet_id == wallet_id)
    if starting_after is not None:
        after = await _row(conn, tenant_id, starting_after)
        statement = statement.where(
            (payouts.c.created_at < after.created_at)
            | ((payouts.c.created_at == after.created_at) & (payouts.c.id < after.id))
        )
    rows = (
        await conn.execute(
            statement.order_by(payouts.c.created_at.desc(), payouts.c.id.desc()).limit(limit + 1)
        )
    ).all()
    page, has_more = split_page(list(rows), limit)
    return Page[PayoutOut](data=[_out(row) for row in page], has_more=has_more)


async def change_status(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    payout_id: uuid.UUID,
    target: PayoutStatus,
    reason: str | None,
    now: datetime,
    scopes: frozenset[str],
) -> PayoutOut:
    """Move a payout to ``target`` if that is one of its ``next_status`` now."""
    row = await _row(conn, tenant_id, payout_id, lock=True)
    allowed = next_status(row)
    expired = (row.status, row.status_reason, row.hold_id) == ("CANCELLED", "EXPIRED", None)
    if target == "PENDING" and expired and row.expires_at <= now:
        # The worker cancelled the expired preview already: the same answer as before it did.
        raise _expired(row)
    if target not in allowed:
        raise InvalidStatusTransition(
            f"a {row.status} payout can move to {', '.join(allowed) or 'nothing'}, not {target}"
        )
    if target in _MANUAL_OUTCOMES and SETTLE_SCOPE not in scopes:
        raise Forbidden(f"posting a payout's outcome needs the scope {SETTLE_SCOPE}")
    values: dict[str, Any] = {}
    if target == "PENDING":
        values = await _hold(conn, row, now)
    elif target == "CANCELLED" and row.hold_id is not None:
        await ledger.release_hold(conn, tenant_id, row.hold_id, now)
    elif target == "FAILED":
        await ledger.release_hold(conn, tenant_id, row.hold_id, now)
        reason = reason or "FAILED"
    elif target == "PROCESSING":
        # The connector is called after this commits; if its answer is never recorded, the
        # worker looks the payout up after RECOVER_AFTER.
        values["next_check_at"] = now + RECOVER_AFTER
    elif target == "COMPLETED":
        values["transaction_id"] = await _capture(conn, row, now)
    if target in _MANUAL_OUTCOMES:
        values["next_check_at"] = None
    return await _record(conn, row, target, reason, now, values)


async def _capture(conn: AsyncConnection, row: Any, now: datetime) -> uuid.UUID:
    """Spend the hold in one journal transaction: the amount to payouts_clearing, the fee to
    fees."""
    destinations = [("payouts_clearing", row.amount)]
    if row.fee_total:
        destinations.append(("fees", row.fee_total))
    posted = await ledger.capture_hold(
        conn,
        ledger.Capture(
            tenant_id=row.tenant_id,
            hold_id=row.hold_id,
            destinations=destinations,
            now=now,
            # Identified by its hold and payout, never by a reference: a capture cannot be
            # refused for one (the payout's own reference was claimed when it was created).
            reference=None,
            description=row.description or f"payout {row.id}",
            metadata=_capture_metadata(row),
        ),
    )
    return posted.transaction_id


def _capture_metadata(row: Any) -> dict[str, str]:
    metadata = {"payout_id": str(row.id)}
    if row.reference is not None:
        metadata["payout_reference"] = row.reference
    return metadata


def _expired(row: Any) -> PayoutExpired:
    return PayoutExpired(f"the preview expired at {isoformat(row.expires_at)}")


async def _hold(conn: AsyncConnection, row: Any, now: datetime) -> dict[str, Any]:
    """Every check a PENDING payout passes, then its hold of amount + fee."""
    if row.expires_at <= now:
        raise _expired(row)
    wallet = await wallets.lock_for_change(conn, row.tenant_id, row.wallet_id, now)
    if wallet.status == "closed":
        raise WalletClosed(f"wallet {wallet.id} is closed")
    if wallet.status == "frozen":
        raise WalletFrozen(f"wallet {wallet.id} is frozen")
    instrument = await instruments.find(conn, row.tenant_id, row.instrument_id)
    if instrument is None:
        raise NotFound(f"payment instrument {row.instrument_id} was deleted")
    if instrument.status != "verified":
        raise InstrumentNotVerified(f"payment instrument {instrument.id} is not verified")
    options = await get_options(conn, row.tenant_id)
    _check_option(_option(options, row.payment_option), row.currency, row.amount, instrument.type)
    total = row.amount + row.fee_total
    try:
        hold_id = await ledger.place_hold(
            conn,
            ledger.HoldRequest(
                tenant_id=row.tenant_id,
                wallet_id=row.wallet_id,
                amount=total,
                now=now,
                reference=f"payout:{row.id}",
            ),
        )
    except InsufficientFunds:
        raise InsufficientFunds(
            f"the wallet has less than {total} minor units (amount and fee) available"
        ) from None
    return {
        "hold_id": hold_id,
        "pending_expires_at": now + timedelta(seconds=options.pending_ttl_seconds),
    }


async def _record(
    conn: AsyncConnection,
    row: Any,
    target: PayoutStatus,
    reason: str | None,
    now: datetime,
    values: dict[str, Any],
) -> PayoutOut:
    await conn.execute(
        update(payouts)
        .where(payouts.c.id == row.id)
        .values(
            status=target,
            status_reason=reason,
            history=[*row.history, _history(target, now, reason)],
            updated_at=now,
            **values,
        )
    )
    payout = _out(await _row(conn, row.tenant_id, row.id))
    await events.record(conn, row.tenant_id, f"payout.{target.lower()}", payout, now)
    return payout


# ---- the rails: submission, outcomes, expiry (the worker's side) ------------------------------

# A PROCESSING payout whose submission was never recorded is looked up after this; so is one
# its rail has said nothing about for this long.
RECOVER_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Processing:
    """A PROCESSING payout as the worker sees it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    connector: str
    reference: str | None
    processing_since: datetime
    ref: PayoutRef
    worker_failures: int = 0  # the worker's failures at it in a row (kassa.payouts.failures)


def _processing(row: Any) -> Processing:
    return Processing(
        id=row.id,
        tenant_id=row.tenant_id,
        connector=row.connector,
        reference=row.connector_reference,
        processing_since=row.updated_at,
        ref=PayoutRef(row.id, row.amount, row.currency),
        worker_failures=row.worker_failures,
    )


async def processing_ref(
    conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID
) -> Processing:
    return _processing(await _row(conn, tenant_id, payout_id))


async def record_submission(
    conn: AsyncConnection, payout_id: uuid.UUID, submitted: Submitted
) -> None:
    """The rail took the payout: keep its reference and when to ask it first."""
    await conn.execute(
        update(payouts)
        .where(payouts.c.id == payout_id, payouts.c.status == "PROCESSING")
        .values(connector_reference=submitted.reference, next_check_at=submitted.check_at)
    )


async def due_checks(conn: AsyncConnection, now: datetime, limit: int) -> list[Processing]:
    rows = (
        await conn.execute(
            select(payouts)
            .where(payouts.c.status == "PROCESSING", payouts.c.next_check_at <= now)
            .order_by(payouts.c.next_check_at)
            .limit(limit)
        )
    ).all()
    return [_processing(row) for row in rows]


async def apply_outcome(
    conn: AsyncConnection, payout: Processing, outcome: Outcome, now: datetime, recheck: timedelta
) -> bool:
    """Apply what the rail said, once: only a payout still PROCESSING changes (the row is
    locked first, so of two workers with the same answer one applies it)."""
    row = await _row(conn, payout.tenant_id, payout.id, lock=True)
    if row.status != "PROCESSING":
        return False
    values: dict[str, Any] = {"connector_reference": outcome.reference or row.connector_reference}
    if outcome.status == "PROCESSING":
        values["next_check_at"] = now + recheck
        await conn.execute(update(payouts).where(payouts.c.id == row.id).values(**values))
        return False
    values["next_check_at"] = None
    if outcome.status == "COMPLETED":
        values["transaction_id"] = await _capture(conn, row, now)
        await _record(conn, row, "COMPLETED", None, now, values)
    else:
        await ledger.release_hold(conn, row.tenant_id, row.hold_id, now)
        await _record(conn, row, "FAILED", outcome.reason or "FAILED", now, values)
    return True


@dataclass(frozen=True)
class Expiring:
    """A PREVIEW or PENDING payout past its deadline, as the worker sees it."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    status: str
    worker_failures: int


async def due_expiries(conn: AsyncConnection, now: datetime, limit: int) -> list[Expiring]:
    """PENDING payouts past their tenant's pending TTL and PREVIEW payouts past their expiration
    time, except those the worker is leaving alone after a failure (``worker_retry_at``)."""
    due: list[Expiring] = []
    for status, deadline in (
        ("PENDING", payouts.c.pending_expires_at),
        ("PREVIEW", payouts.c.expires_at),
    ):
        rows = await conn.execute(
            select(payouts.c.id, payouts.c.tenant_id, payouts.c.status, payouts.c.worker_failures)
            .where(
                payouts.c.status == status,
                deadline <= now,
                or_(payouts.c.worker_retry_at.is_(None), payouts.c.worker_retry_at <= now),
            )
            .order_by(deadline)
            .limit(limit)
        )
        due += [Expiring(*row) for row in rows]
    return due


async def expire(conn: AsyncConnection, payout: Expiring, now: datetime) -> bool:
    """Cancel the payout with the reason EXPIRED, releasing a PENDING hold, once: the row is
    locked and its status checked first, so of two workers one cancels it."""
    row = await _row(conn, payout.tenant_id, payout.id, lock=True)
    if row.status != payout.status:
        return False
    if row.hold_id is not None:
        await ledger.expire_hold(conn, row.tenant_id, row.hold_id, now)
    await _record(conn, row, "CANCELLED", "EXPIRED", now, {})
    return True
