"""Payouts: PREVIEW -> PENDING -> PROCESSING -> COMPLETED | FAILED, or CANCELLED before PROCESSING.

A PREVIEW fixes the fee and moves no money. PENDING re-checks everything and places one hold of
amount + fee on the wallet's cash. PROCESSING hands the payout to its connector (outside the
database transaction: see ``rails``). COMPLETED captures the hold in one journal transaction
(wallet -> ``payouts_clearing`` for the amount, wallet -> ``fees`` for the fee); FAILED and
CANCELLED release it. Each change commits with its event.

This module is the rules, as pure functions of typed records: which moves a payout may make
(``next_status``, ``check_move``), what a PREVIEW and a PENDING payout must pass
(``check_preview``, ``check_pending``), the rows they become (``preview``, ``moved``), what a
capture posts, and every refusal in its one wording. Two engines apply them, each a change in
one short transaction, and ``payouts.engine`` chooses between them once: on SQLite
``engine_sqlite`` calls these functions in the process's one writer thread; on PostgreSQL the
functions of ``engine_pg`` restate them in SQL, in the same order, and their refusal codes are
turned into errors by the builders here. ``tests/payouts/test_parity.py`` runs one table of
cases through both.

The reads (``get``, ``list_payouts``) run here, through SQLAlchemy.
"""

from __future__ import annotations

import dataclasses
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.clock import isoformat
from kassa.kit.errors import Forbidden, NotFound
from kassa.kit.pagination import Page, split_page
from kassa.ledger.errors import CurrencyMismatch, InsufficientFunds
from kassa.payouts import options as payment_options
from kassa.payouts import repository
from kassa.payouts.connectors import Outcome
from kassa.payouts.errors import InstrumentNotVerified, InvalidStatusTransition, PayoutExpired
from kassa.payouts.repository import Payout
from kassa.payouts.schemas import NewPayout, PaymentOption, PaymentOptions, PayoutOut, PayoutStatus
from kassa.wallets import repository as wallet_repository
from kassa.wallets import rules

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
# The reason of a payout the worker cancelled because it waited too long.
EXPIRED = "EXPIRED"


@dataclass(frozen=True)
class WalletFacts:
    """What the rules read of a payout's wallet."""

    status: str
    frozen_until: datetime | None
    currency: str
    customer_id: str


@dataclass(frozen=True)
class InstrumentFacts:
    """What the rules read of a live payment instrument."""

    customer_id: str
    type: str
    status: str


def next_status(payout: Payout) -> list[PayoutStatus]:
    """The statuses a payout may move to now (a manual payout in PROCESSING: its outcome)."""
    if payout.status == "PROCESSING" and payout.connector == "manual":
        return list(MANUAL_OUTCOMES)
    return list(_NEXT[payout.status])


def shown(payout: Payout) -> PayoutOut:
    """The payout as the API shows it (answers and events alike)."""
    return PayoutOut.from_row(payout, next_status(payout))


def history_entry(status: str, now: datetime, reason: str | None = None) -> dict[str, Any]:
    return {"status": status, "at": isoformat(now), "reason": reason}


# -- the rules, as pure functions ---------------------------------------------------------------


def check_preview(
    body: NewPayout,
    wallet: WalletFacts | None,
    instrument: InstrumentFacts | None,
    tenant_options: PaymentOptions,
    now: datetime,
) -> tuple[PaymentOption, int]:
    """Everything a PREVIEW passes before its reference, in order; its option and fee."""
    if wallet is None:
        raise NotFound(f"wallet {body.wallet_id} not found")
    refused = rules.refusal(
        status=wallet.status,
        frozen_until=wallet.frozen_until,
        wallet_currency=wallet.currency,
        currency=wallet.currency,  # asked for another: refused below, in the payout's words
        refuse_frozen=True,
        now=now,
    )
    if refused is not None:  # a payout that could not go now is not previewed either
        raise rules.wallet_error(refused, body.wallet_id)
    if body.currency is not None and body.currency != wallet.currency:
        raise currency_mismatch(wallet.currency, body.currency)
    if instrument is None or instrument.customer_id != wallet.customer_id:
        raise no_instrument(body.instrument_id)
    option = payment_options.find_option(tenant_options, body.payment_option)
    payment_options.check_option(option, wallet.currency, body.amount, instrument.type)
    return option, payment_options.fee_for(option, body.amount)


def preview(
    payout_id: uuid.UUID,
    tenant_id: uuid.UUID,
    body: NewPayout,
    wallet: WalletFacts,
    option: PaymentOption,
    fee: int,
    now: datetime,
    preview_ttl: timedelta,
) -> Payout:
    """The new payout in PREVIEW."""
    fees = [{"amount": fee, "currency": wallet.currency, "reason": "WITHDRAWAL_FEE"}] if fee else []
    return Payout(
        id=payout_id,
        tenant_id=tenant_id,
        wallet_id=body.wallet_id,
        customer_id=wallet.customer_id,
        instrument_id=body.instrument_id,
        payment_option=option.code,
        connector=option.connector,
        amount=body.amount,
        currency=wallet.currency,
        fees=fees,
        fee_total=fee,
        status="PREVIEW",
        status_reason=None,
        reference=body.reference,
        description=body.description,
        metadata=body.metadata,
        hold_id=None,
        transaction_id=None,
        connector_reference=None,
        next_check_at=None,
        expires_at=now + preview_ttl,
        pending_expires_at=None,
        history=[history_entry("PREVIEW", now)],
        created_at=now,
        updated_at=now,
        worker_failures=0,
        worker_error=None,
        worker_failing_since=None,
        worker_retry_at=None,
    )


def check_move(payout: Payout, target: str, now: datetime, *, may_settle: bool) -> None:
    """Whether the payout may move to ``target`` now, before anything is read for the move:
    a manual outcome needs ``payouts:settle`` (refused only where it could be posted), a
    preview cancelled by the worker's expiry answers as it did before, then ``next_status``,
    then a PENDING needs a preview that has not expired."""
    allowed = next_status(payout)
    if target in MANUAL_OUTCOMES and not may_settle and target in allowed:
        raise settle_refused()
    was_expired = (payout.status, payout.status_reason, payout.hold_id) == (
        "CANCELLED",
        EXPIRED,
        None,
    )
    if target == "PENDING" and was_expired and payout.expires_at <= now:
        raise expired(payout)
    if target not in allowed:
        raise invalid_transition(payout, target)
    if target == "PENDING" and payout.expires_at <= now:
        raise expired(payout)


def check_pending(
    payout: Payout,
    wallet: WalletFacts | None,
    instrument: InstrumentFacts | None,
    tenant_options: PaymentOptions,
    now: datetime,
) -> None:
    """Everything a PENDING payout passes before its hold, in order: the same wallet rules as
    an immediate withdrawal's, a verified instrument, an option that still takes it."""
    if wallet is None:
        raise NotFound(f"wallet {payout.wallet_id} not found")
    refused = rules.refusal(
        status=wallet.status,
        frozen_until=wallet.frozen_until,
        wallet_currency=wallet.currency,
        currency=payout.currency,
        refuse_frozen=True,
        now=now,
    )
    if refused is not None:
        raise rules.wallet_error(refused, payout.wallet_id, payout.currency)
    if instrument is None:
        raise NotFound(f"payment instrument {payout.instrument_id} was deleted")
    if instrument.status != "verified":
        raise InstrumentNotVerified(f"payment instrument {payout.instrument_id} is not verified")
    option = payment_options.find_option(tenant_options, payout.payment_option)
    payment_options.check_option(option, payout.currency, payout.amount, instrument.type)


def hold_total(payout: Payout) -> int:
    """What PENDING holds and COMPLETED captures: the amount and its fee."""
    return payout.amount + payout.fee_total


def hold_reference(payout: Payout) -> str:
    return f"payout:{payout.id}"


def pending_expires_at(tenant_options: PaymentOptions, now: datetime) -> datetime:
    return now + timedelta(seconds=tenant_options.pending_ttl_seconds)


def capture_destinations(payout: Payout) -> list[tuple[str, int]]:
    """Where a capture sends the held money: the amount to payouts_clearing, the fee to fees."""
    destinations = [("payouts_clearing", payout.amount)]
    if payout.fee_total:
        destinations.append(("fees", payout.fee_total))
    return destinations


def capture_description(payout: Payout) -> str:
    return payout.description or f"payout {payout.id}"


def capture_metadata(payout: Payout) -> dict[str, str]:
    """A capture is identified by its hold and payout, never by a reference: it cannot be
    refused for one (the payout's own reference was claimed when it was created)."""
    metadata = {"payout_id": str(payout.id)}
    if payout.reference is not None:
        metadata["payout_reference"] = payout.reference
    return metadata


def outcome_reason(target: str, reason: str | None) -> str | None:
    """A FAILED payout always says why."""
    return (reason or "FAILED") if target == "FAILED" else reason


def rail_reference(payout: Payout, outcome: Outcome) -> str | None:
    """The rail's reference for the payout: the one it just gave, or the one kept before."""
    return outcome.reference or payout.connector_reference


def moved(payout: Payout, target: str, reason: str | None, now: datetime, **changes: Any) -> Payout:
    """The payout at ``target`` (with ``changes``), its move recorded in its history."""
    return dataclasses.replace(
        payout,
        status=target,
        status_reason=reason,
        history=[*payout.history, history_entry(target, now, reason)],
        updated_at=now,
        **changes,
    )


# -- refusals, in the same words from each engine -----------------------------------------------


def currency_mismatch(wallet_currency: str, currency: str) -> CurrencyMismatch:
    return CurrencyMismatch(f"the wallet holds {wallet_currency}, not {currency}")


def no_instrument(instrument_id: uuid.UUID) -> NotFound:
    return NotFound(f"the wallet's customer has no payment instrument {instrument_id}")


def not_found(payout_id: object) -> NotFound:
    return NotFound(f"payout {payout_id} not found")


def settle_refused() -> Forbidden:
    return Forbidden(f"posting a payout's outcome needs the scope {SETTLE_SCOPE}")


def invalid_transition(payout: Payout, target: str) -> InvalidStatusTransition:
    allowed = next_status(payout)
    return InvalidStatusTransition(
        f"a {payout.status} payout can move to {', '.join(allowed) or 'nothing'}, not {target}"
    )


def insufficient_funds(payout: Payout) -> InsufficientFunds:
    return InsufficientFunds(
        f"the wallet has less than {hold_total(payout)} minor units (amount and fee) available"
    )


def expired(payout: Payout) -> PayoutExpired:
    return PayoutExpired(f"the preview expired at {isoformat(payout.expires_at)}")


# -- reads ----------------------------------------------------------------------------------------


async def _payout(
    conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID, *, lock: bool = False
) -> Payout:
    found = await repository.get_payout(conn, tenant_id, payout_id, lock=lock)
    if found is None:
        raise not_found(payout_id)
    return found


async def get(conn: AsyncConnection, tenant_id: uuid.UUID, payout_id: uuid.UUID) -> PayoutOut:
    return shown(await _payout(conn, tenant_id, payout_id))


async def list_payouts(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    status: str | None,
    customer_id: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
    wallet_id: uuid.UUID | None = None,
    reference: str | None = None,
    offset: int = 0,
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
        reference=reference,
        offset=offset,
    )
    page, has_more = split_page(found, limit)
    return Page[PayoutOut](data=[shown(payout) for payout in page], has_more=has_more)
