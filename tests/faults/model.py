"""A pure-Python reference model of Kassa's wallets, holds and payouts (no I/O, no Kassa code).

``tests/faults/test_model.py`` drives the real service and this model side by side: each
operation here returns the answer Kassa must give (``Expect``: HTTP status and problem ``code``)
and applies its effect only when it succeeds. It follows docs/api.md: cash ``balance`` and
``held``, ``available = balance - held``, ``gift`` spendable but never withdrawable; a freeze with
an end stops counting when the clock passes it; a reference is unique per tenant across
transactions and payouts and is claimed only by a request that succeeds; a PENDING payout holds
amount + fee, COMPLETED captures it, FAILED and CANCELLED release it; the worker cancels expired
PREVIEW and PENDING payouts with the reason ``EXPIRED``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

PREVIEW_TTL = timedelta(minutes=15)
PENDING_TTL = timedelta(hours=1)

# The one payment option of every model tenant: small limits and a fee with a cap, so that
# the amount bounds, the rounding (half up) and the cap are all reached by small amounts.
OPTION_MIN = 2
OPTION_MAX = 400
FEE_FIXED = 3
FEE_BPS = 250
FEE_MAX = 12

NEXT: dict[str, list[str]] = {
    "PREVIEW": ["PENDING", "CANCELLED"],
    "PENDING": ["PROCESSING", "CANCELLED"],
    "PROCESSING": ["COMPLETED", "FAILED"],  # the manual connector: the merchant posts it
    "COMPLETED": [],
    "FAILED": [],
    "CANCELLED": [],
}


def fee_of(amount: int) -> int:
    return min(FEE_FIXED + (amount * FEE_BPS + 5_000) // 10_000, FEE_MAX)


@dataclass(frozen=True)
class Expect:
    status: int
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.status < 400


OK = Expect(200)
CREATED = Expect(201)


def refused(status: int, code: str) -> Expect:
    return Expect(status, code)


@dataclass
class Wallet:
    id: str
    customer_id: str
    verified_instrument: str
    unverified_instrument: str | None
    status: str = "active"  # as stored: active, frozen, closed
    frozen_until: datetime | None = None
    balance: int = 0
    held: int = 0
    gift: int = 0

    def effective_status(self, now: datetime) -> str:
        if self.status == "frozen" and self.frozen_until is not None and self.frozen_until <= now:
            return "active"
        return self.status

    def shown_frozen_until(self, now: datetime) -> datetime | None:
        return self.frozen_until if self.effective_status(now) == "frozen" else None

    @property
    def available(self) -> int:
        return self.balance - self.held


@dataclass
class Payout:
    id: str
    wallet_id: str
    amount: int
    fee: int
    reference: str | None
    expires_at: datetime
    instrument_verified: bool
    status: str = "PREVIEW"
    status_reason: str | None = None
    held: bool = False
    pending_expires_at: datetime | None = None
    expired_preview: bool = False  # cancelled by the worker as an expired PREVIEW

    @property
    def total(self) -> int:
        return self.amount + self.fee


@dataclass
class Model:
    now: datetime
    wallets: dict[str, Wallet] = field(default_factory=dict)
    payouts: dict[str, Payout] = field(default_factory=dict)
    references: set[str] = field(default_factory=set)

    # ---- wallets ------------------------------------------------------------------------

    def add_wallet(self, wallet: Wallet) -> None:
        self.wallets[wallet.id] = wallet

    def _claimable(self, reference: str | None) -> bool:
        return reference is None or reference not in self.references

    def _claim(self, reference: str | None) -> None:
        if reference is not None:
            self.references.add(reference)

    def deposit(self, wallet_id: str, amount: int, gift: bool, reference: str | None) -> Expect:
        wallet = self.wallets[wallet_id]
        # The reference is claimed first (the hot path's order), then the wallet is checked.
        if not self._claimable(reference):
            return refused(409, "duplicate_reference")
        if wallet.status == "closed":
            return refused(409, "wallet_closed")
        self._claim(reference)
        if gift:
            wallet.gift += amount
        else:
            wallet.balance += amount
        return CREATED

    def withdraw(self, wallet_id: str, amount: int, reference: str | None) -> Expect:
        wallet = self.wallets[wallet_id]
        if not self._claimable(reference):
            return refused(409, "duplicate_reference")
        status = wallet.effective_status(self.now)
        if status == "closed":
            return refused(409, "wallet_closed")
        if status == "frozen":
            return refused(409, "wallet_frozen")
        if amount > wallet.available:
            return refused(409, "insufficient_funds")
        self._claim(reference)
        wallet.balance -= amount
        return CREATED

    def freeze(self, wallet_id: str, until: datetime | None) -> Expect:
        wallet = self.wallets[wallet_id]
        if wallet.status == "closed":
            return refused(409, "wallet_closed")
        if until is not None and until <= self.now:
            return refused(422, "validation_failed")
        wallet.status = "frozen"
        wallet.frozen_until = until
        return OK

    def unfreeze(self, wallet_id: str) -> Expect:
        wallet = self.wallets[wallet_id]
        if wallet.status == "closed":
            return refused(409, "wallet_closed")
        wallet.status = "active"
        wallet.frozen_until = None
        return OK

    def close(self, wallet_id: str, forfeit_gift: bool) -> Expect:
        wallet = self.wallets[wallet_id]
        if wallet.status == "closed":
            return OK
        if wallet.balance or wallet.held:
            return refused(409, "wallet_not_empty")
        if wallet.gift and not forfeit_gift:
            return refused(409, "wallet_not_empty")
        wallet.gift = 0
        wallet.status = "closed"
        wallet.frozen_until = None
        return OK

    # ---- payouts ------------------------------------------------------------------------

    def create_payout(
        self, wallet_id: str, amount: int, instrument: str, reference: str | None
    ) -> Expect:
        wallet = self.wallets[wallet_id]
        # A payout that could not go now is not previewed either (PENDING checks it again).
        status = wallet.effective_status(self.now)
        if status in ("closed", "frozen"):
            return refused(409, f"wallet_{status}")
        if instrument not in (wallet.verified_instrument, wallet.unverified_instrument):
            return refused(404, "not_found")  # another customer's instrument
        if not OPTION_MIN <= amount <= OPTION_MAX:
            return refused(422, "payment_option_refused")
        if not self._claimable(reference):
            return refused(409, "duplicate_reference")
        return CREATED  # a preview moves no money

    def add_payout(self, payout: Payout) -> None:
        self._claim(payout.reference)
        self.payouts[payout.id] = payout

    def move_payout(self, payout_id: str, target: str) -> Expect:
        payout = self.payouts[payout_id]
        wallet = self.wallets[payout.wallet_id]
        if target == "PENDING" and payout.expired_preview:
            return refused(409, "payout_expired")  # the same answer as before the worker came
        if target not in NEXT[payout.status]:
            return refused(409, "invalid_status_transition")
        if target == "PENDING":
            if payout.expires_at <= self.now:
                return refused(409, "payout_expired")
            status = wallet.effective_status(self.now)
            if status == "closed":
                return refused(409, "wallet_closed")
            if status == "frozen":
                return refused(409, "wallet_frozen")
            if not payout.instrument_verified:
                return refused(409, "instrument_not_verified")
            if payout.total > wallet.available:
                return refused(409, "insufficient_funds")
            wallet.held += payout.total
            payout.held = True
            payout.pending_expires_at = self.now + PENDING_TTL
        elif target in ("CANCELLED", "FAILED"):
            self._release(payout)
            if target == "FAILED":
                payout.status_reason = "FAILED"
        elif target == "COMPLETED":
            wallet.held -= payout.total
            wallet.balance -= payout.total
            payout.held = False
        payout.status = target
        return OK

    def _release(self, payout: Payout) -> None:
        if payout.held:
            self.wallets[payout.wallet_id].held -= payout.total
            payout.held = False

    def run_worker(self) -> None:
        """The payout worker's pass: expired PENDING and PREVIEW payouts are cancelled."""
        for payout in self.payouts.values():
            if payout.status == "PENDING":
                assert payout.pending_expires_at is not None
                if payout.pending_expires_at <= self.now:
                    self._release(payout)
                    payout.status, payout.status_reason = "CANCELLED", "EXPIRED"
            elif payout.status == "PREVIEW" and payout.expires_at <= self.now:
                payout.status, payout.status_reason = "CANCELLED", "EXPIRED"
                payout.expired_preview = True
