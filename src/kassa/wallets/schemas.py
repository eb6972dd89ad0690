from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import Row

from kassa.kit.fields import (
    Currency,
    Description,
    Metadata,
    MinorUnits,
    Reference,
    Text255,
)
from kassa.ledger.schemas import Timestamp


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewWallet(Body):
    customer_id: Text255
    currency: Currency
    name: Text255 | None = None
    metadata: Metadata = Field(default_factory=dict)


class DepositIn(Body):
    amount: MinorUnits
    kind: Literal["cash", "gift"] = "cash"
    currency: Currency | None = Field(
        default=None, description="if given, must be the wallet's currency"
    )
    reference: Reference | None = Field(default=None, description="unique per tenant")
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


class WithdrawalIn(Body):
    amount: MinorUnits
    currency: Currency | None = Field(
        default=None, description="if given, must be the wallet's currency"
    )
    reference: Reference | None = Field(default=None, description="unique per tenant")
    description: Description | None = None
    metadata: Metadata = Field(default_factory=dict)


def _representable_in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_out_of_range", "must be before the year 10000 in UTC"
        ) from None


class FreezeIn(Body):
    until: Annotated[AwareDatetime, AfterValidator(_representable_in_utc)] | None = Field(
        default=None, description="frozen until this moment; without it, until unfrozen"
    )
    reason: Text255 | None = None


WalletStatus = Literal["active", "frozen", "closed"]


class WalletOut(BaseModel):
    id: uuid.UUID
    customer_id: str
    currency: str
    name: str | None
    alias: str
    status: WalletStatus
    frozen_until: Timestamp | None
    freeze_reason: str | None = Field(description="why the wallet is frozen, while it is")
    balance: int = Field(description="posted cash, minor units")
    held_balance: int = Field(description="cash reserved by open holds")
    available_balance: int = Field(description="balance - held_balance: what can be withdrawn")
    gift_balance: int = Field(description="promotional credit: spendable, never withdrawable")
    total_balance: int = Field(description="balance + gift_balance")
    metadata: dict[str, str]
    created_at: Timestamp
    updated_at: Timestamp

    @classmethod
    def from_row(cls, row: Row[Any], now: datetime) -> WalletOut:
        status, frozen_until = effective_status(row.status, row.frozen_until, now)
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            currency=row.currency,
            name=row.name,
            alias=row.alias,
            status=status,
            frozen_until=frozen_until,
            freeze_reason=row.freeze_reason if status == "frozen" else None,
            balance=row.balance,
            held_balance=row.held,
            available_balance=row.balance - row.held,
            gift_balance=row.gift_balance,
            total_balance=row.balance + row.gift_balance,
            metadata=row.metadata,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


def effective_status(
    status: str, frozen_until: datetime | None, now: datetime
) -> tuple[WalletStatus, datetime | None]:
    """A freeze with an end stops counting when the end passes, without a write."""
    if status == "frozen":
        if frozen_until is not None and frozen_until <= now:
            return "active", None
        return "frozen", frozen_until
    return ("closed" if status == "closed" else "active"), None
