"""What a movement of a wallet's money is, asks and gives: the types of ``movements``, shared
by its two engines."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from kassa.idempotency.service import Answer
from kassa.kit.errors import KassaError, NotFound
from kassa.ledger.errors import CurrencyMismatch, InsufficientFunds, duplicate_reference
from kassa.ledger.schemas import TransactionOut
from kassa.wallets.errors import WalletClosed, WalletFrozen
from kassa.wallets.schemas import WalletOut


@dataclass(frozen=True)
class Movement:
    """What a deposit, gift, immediate withdrawal or gift forfeit does to the ledger."""

    kind: str  # the journal transaction's kind
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
class Moved:
    """A movement that went through: its transaction and the wallet's balances after it."""

    transaction: TransactionOut
    balance: int  # cash
    held: int  # cash reserved by open holds
    gift_balance: int

    def wallet(self, before: WalletOut) -> WalletOut:
        """``before`` (read ahead of the movement) with the balances the movement left."""
        return before.model_copy(
            update={
                "balance": self.balance,
                "held_balance": self.held,
                "available_balance": self.balance - self.held,
                "gift_balance": self.gift_balance,
                "total_balance": self.balance + self.gift_balance,
            }
        )


# What became of a movement: it went through, or a rule refused it.
Outcome = Moved | KassaError
# How a route answers an outcome (``/v1`` with a transaction or a problem document, each dialect
# in its own shape). Called once per movement; with an Idempotency-Key the answer is stored.
AnswerFor = Callable[[Outcome], Answer]


def refusal(code: str, request: MoneyRequest) -> KassaError:
    """The error for a rule's code, the same text whichever engine found it."""
    wallet = request.wallet_id
    if code == "duplicate_reference":
        return duplicate_reference(request.reference)
    if code == "not_found":
        return NotFound(f"wallet {wallet} not found")
    if code == "wallet_closed":
        return WalletClosed(f"wallet {wallet} is closed")
    if code == "wallet_frozen":
        return WalletFrozen(f"wallet {wallet} is frozen; it takes no withdrawals")
    if code == "currency_mismatch":
        return CurrencyMismatch(f"wallet {wallet} does not hold {request.currency}")
    if code == "insufficient_funds":
        return InsufficientFunds(
            f"wallet {wallet} has less than {request.amount} minor units available"
        )
    raise ValueError(f"unknown refusal {code!r}")


def transaction_out(
    request: MoneyRequest,
    transaction_id: uuid.UUID,
    currency: str,
    balance_after: int,
    now: datetime,
) -> TransactionOut:
    movement = request.movement
    return TransactionOut(
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
