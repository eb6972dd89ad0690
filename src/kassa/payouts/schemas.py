from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from kassa.instruments.schemas import InstrumentType
from kassa.kit.fields import Currency, Description, Metadata, MinorUnits, Reference
from kassa.kit.money import MAX_MINOR_UNITS
from kassa.ledger.schemas import Timestamp
from kassa.sca.schemas import ScaEventOut

if TYPE_CHECKING:
    from kassa.payouts.repository import Payout

PayoutStatus = Literal["PREVIEW", "PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED"]
OptionCode = Literal["BANK_TRANSFER", "CARD", "RAPID_TRANSFER", "PAYSAFECASH", "PAGO_EFECTIVO"]
ConnectorName = Literal["manual", "sandbox"]

NonNegative = Annotated[int, Field(ge=0, le=MAX_MINOR_UNITS)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeeRule(Body):
    """fee = fixed + amount * bps / 10,000 (half up), then at least ``min``, at most ``max``."""

    fixed: NonNegative = 0
    bps: int = Field(default=0, ge=0, le=10_000, description="basis points of the amount")
    min: NonNegative = 0
    max: NonNegative | None = None

    def fee(self, amount: int) -> int:
        fee = self.fixed + (amount * self.bps + 5_000) // 10_000
        fee = max(fee, self.min)
        return fee if self.max is None else min(fee, self.max)


class PaymentOption(Body):
    code: OptionCode
    instrument_types: list[InstrumentType] = Field(min_length=1)
    currencies: list[Currency] = Field(min_length=1)
    min_amount: MinorUnits = 1
    max_amount: MinorUnits = MAX_MINOR_UNITS
    fee: FeeRule = Field(default_factory=FeeRule)
    connector: ConnectorName = Field(
        default="manual",
        description="manual: the merchant posts COMPLETED or FAILED; sandbox: a test rail",
    )


def _unique_codes(options: list[PaymentOption]) -> list[PaymentOption]:
    codes = [option.code for option in options]
    if len(set(codes)) != len(codes):
        raise PydanticCustomError("duplicate_payment_option", "lists a payment option twice")
    for option in options:
        if option.min_amount > option.max_amount:
            raise PydanticCustomError("invalid_limits", "min_amount is above max_amount")
    return options


class PaymentOptions(Body):
    options: Annotated[list[PaymentOption], AfterValidator(_unique_codes)] = Field(
        default_factory=list, max_length=20
    )
    pending_ttl_seconds: int = Field(
        default=86_400,
        ge=60,
        le=30 * 86_400,
        description="a PENDING payout not moved on within this is cancelled (EXPIRED)",
    )


class NewPayout(Body):
    wallet_id: uuid.UUID
    amount: MinorUnits
    currency: Currency | None = Field(default=None, description="if given, the wallet's")
    payment_option: OptionCode
    instrument_id: uuid.UUID
    reference: Reference | None = Field(default=None, description="unique per tenant")
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


class StatusChange(Body):
    status: Literal["PENDING", "PROCESSING", "CANCELLED", "COMPLETED", "FAILED"]
    reason: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        default=None, description="why (FAILED, CANCELLED)"
    )


class FeeLine(BaseModel):
    amount: int
    currency: str
    reason: Literal["WITHDRAWAL_FEE"]


class PayoutOut(BaseModel):
    id: uuid.UUID
    wallet_id: uuid.UUID
    customer_id: str
    amount: int
    currency: str
    fees: list[FeeLine]
    fee_total: int
    total: int = Field(description="amount + fee_total: what the wallet gives")
    payment_option: str
    instrument_id: uuid.UUID
    status: PayoutStatus
    status_reason: str | None
    next_status: list[PayoutStatus]
    action: Literal["NONE", "SCA"] = Field(
        description="what the customer must do first: SCA (see ``sca``) before it can move on"
    )
    expires_at: Timestamp
    reference: str | None
    description: str | None
    metadata: dict[str, str]
    transaction_id: uuid.UUID | None
    history: list[dict[str, Any]]
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Payout, next_status: list[PayoutStatus]) -> PayoutOut:
        return cls(
            id=row.id,
            wallet_id=row.wallet_id,
            customer_id=row.customer_id,
            amount=row.amount,
            currency=row.currency,
            fees=[FeeLine(**line) for line in row.fees],
            fee_total=row.fee_total,
            total=row.amount + row.fee_total,
            payment_option=row.payment_option,
            instrument_id=row.instrument_id,
            status=row.status,
            status_reason=row.status_reason,
            next_status=next_status,
            action="NONE",
            expires_at=row.expires_at,
            reference=row.reference,
            description=row.description,
            metadata=dict(row.metadata),
            transaction_id=row.transaction_id,
            history=list(row.history),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


class PayoutAwaitingSca(PayoutOut):
    """A move to PENDING that waits for Strong Customer Authentication: the payout unmoved,
    with the SCA event to complete first."""

    action: Literal["NONE", "SCA"] = "SCA"
    sca: ScaEventOut
