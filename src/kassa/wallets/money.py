"""What a movement of a wallet's money is, asks and gives: the types of ``movements``, shared
by its two engines."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kassa.idempotency.service import Answer
from kassa.kit.errors import KassaError
from kassa.ledger.errors import Holder, InsufficientFunds, duplicate_reference
from kassa.ledger.schemas import TransactionKind, TransactionOut
from kassa.wallets import rules
from kassa.wallets.schemas import WalletOut, effective_status


@dataclass(frozen=True)
class Movement:
    """What a deposit, gift, immediate withdrawal or gift forfeit does to the ledger."""

    kind: TransactionKind  # the journal transaction's kind
    account_kind: str  # the wallet's account it moves: cash or gift
    sign: int  # +1 into the wallet, -1 out of it
    counter_kind: str  # the tenant's system account on the other side
    refuse_frozen: bool  # a frozen wallet refuses it

    @property
    def event(self) -> str:
        return "wallet.credited" if self.sign > 0 else "wallet.debited"


DEPOSIT = Movement("deposit", "cash", 1, "funding", refuse_frozen=False)
GIFT = Movement("gift", "gift", 1, "funding", refuse_frozen=False)
WITHDRAWAL = Movement("withdrawal", "cash", -1, "payouts_clearing", refuse_frozen=True)
GIFT_FORFEIT = Movement("reversal", "gift", -1, "funding", refuse_frozen=False)


@dataclass(frozen=True)
class MoneyRequest:
    """One movement of one wallet's money, from any route."""

    tenant_id: uuid.UUID
    wallet_id: uuid.UUID
    movement: Movement
    amount: int  # minor units, > 0
    currency: str | None = None  # when given, must be the wallet's
    reference: str | None = None  # unique per tenant across transactions and payouts
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WalletRef:
    """What never changes about a wallet once it exists: enough to find it and show it."""

    id: uuid.UUID
    customer_id: str
    currency: str
    name: str | None
    alias: str
    metadata: dict[str, str]
    created_at: datetime


@dataclass(frozen=True)
class Moved:
    """A movement that went through: its transaction, and the wallet as it is after it."""

    transaction: TransactionOut
    balance: int  # cash
    held: int  # cash reserved by open holds
    gift_balance: int
    status: str  # as stored: active, frozen (maybe run out) or closed
    frozen_until: datetime | None
    freeze_reason: str | None
    updated_at: datetime

    def wallet(self, ref: WalletRef) -> WalletOut:
        """The whole wallet after the movement, from what never changes about it and what the
        movement read."""
        status, frozen_until = effective_status(
            self.status, self.frozen_until, self.transaction.created_at
        )
        return WalletOut.model_construct(
            id=ref.id,
            customer_id=ref.customer_id,
            currency=ref.currency,
            name=ref.name,
            alias=ref.alias,
            status=status,
            frozen_until=frozen_until,
            freeze_reason=self.freeze_reason if status == "frozen" else None,
            balance=self.balance,
            held_balance=self.held,
            available_balance=self.balance - self.held,
            gift_balance=self.gift_balance,
            total_balance=self.balance + self.gift_balance,
            metadata=ref.metadata,
            created_at=ref.created_at,
            updated_at=self.updated_at,
        )


# What became of a movement: it went through, or a rule refused it.
Outcome = Moved | KassaError
# How a route answers an outcome (``/v1`` with a transaction or a problem document, each dialect
# in its own shape). Called once per movement; with an Idempotency-Key the answer is stored.
AnswerFor = Callable[[Outcome], Answer]


def refusal(code: str, request: MoneyRequest, holder: Holder | None = None) -> KassaError:
    """The error for a rule's code, the same text whichever engine found it; a used reference's
    names its ``holder``."""
    if code == "duplicate_reference":
        return duplicate_reference(request.reference, holder)
    if code == "insufficient_funds":
        return InsufficientFunds(
            f"wallet {request.wallet_id} has less than {request.amount} minor units available"
        )
    return rules.wallet_error(code, request.wallet_id, request.currency)


def transaction_out(
    request: MoneyRequest,
    transaction_id: uuid.UUID,
    currency: str,
    balance_after: int,
    now: datetime,
) -> TransactionOut:
    movement = request.movement
    # Built from values the engines produced, not from a client's input: no validation.
    return TransactionOut.model_construct(
        id=transaction_id,
        wallet_id=request.wallet_id,
        kind=movement.kind,
        amount=request.amount,
        currency=currency,
        balance_before=balance_after - movement.sign * request.amount,
        balance_after=balance_after,
        status="completed",
        reference=request.reference,
        description=request.description,
        metadata=request.metadata,
        created_at=now,
    )
