from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy.engine import Row

from kassa.kit.fields import (
    TEXT255,
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


# A customer's id is part of URLs as it is (``/v1/customers/{customer_id}/instruments``): only
# RFC 3986's unreserved characters, which no client escapes or changes, and no leading dot, so
# that ``.`` and ``..``, which clients drop from paths, cannot be ids. Wallets made before this
# rule keep their ids, and every lookup by customer still takes any text.
CUSTOMER_ID_PATTERN = r"^[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,254}$"
CUSTOMER_ID_RULE = "1 to 255 letters (A-Z, a-z), digits and `-` `_` `~` `.`, not starting with `.`"
_CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)  # with fullmatch: no newline at the end


def _url_safe(value: str) -> str:
    if _CUSTOMER_ID.fullmatch(value) is None:
        raise PydanticCustomError("invalid_customer_id", f"must be {CUSTOMER_ID_RULE}")
    return value


CustomerId = Annotated[
    str,
    TEXT255,
    AfterValidator(_url_safe),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": 1,
            "maxLength": 255,
            "pattern": CUSTOMER_ID_PATTERN,
            "description": f"the merchant's own id for the customer: {CUSTOMER_ID_RULE}",
        }
    ),
]


class NewWallet(Body):
    customer_id: CustomerId
    currency: Currency
    name: Text255 | None = None
    metadata: Metadata = Field(default_factory=dict)


# A bulk import: up to this many wallets per request, each created or refused on its own.
MAX_BATCH_WALLETS = 1_000


class NewWalletBatch(Body):
    """What ``POST /v1/wallets/batch`` documents. It reads the body as
    :class:`WalletBatchEnvelope` and each item as a :class:`NewWallet` of its own, so that an
    invalid item is refused alone."""

    wallets: list[NewWallet] = Field(
        min_length=1,
        max_length=MAX_BATCH_WALLETS,
        description=f"1 to {MAX_BATCH_WALLETS} wallets, each as `POST /v1/wallets` takes it",
    )


class WalletBatchEnvelope(Body):
    wallets: list[Any] = Field(min_length=1, max_length=MAX_BATCH_WALLETS)


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


ProblemDocument = Annotated[
    dict[str, Any], WithJsonSchema({"$ref": "#/components/schemas/Problem"})
]


class WalletBatchItem(BaseModel):
    status: int = Field(
        description="201 if the wallet was created; otherwise the status `POST /v1/wallets`"
        " would have answered (409 `wallet_exists`, 422 `validation_failed`)"
    )
    wallet: WalletOut | None = Field(description="the new wallet, if it was created")
    error: ProblemDocument | None = Field(
        description="why it was refused: the problem document `POST /v1/wallets` answers"
    )


class WalletBatchOut(BaseModel):
    data: list[WalletBatchItem] = Field(description="one result per wallet asked for, in order")
    created: int = Field(description="how many wallets were created")
    refused: int = Field(description="how many were refused")
