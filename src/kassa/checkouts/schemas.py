from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from kassa.kit.fields import Currency, MinorUnits, Text255
from kassa.ledger.schemas import Timestamp

Status = Literal["open", "completed", "cancelled", "expired"]


class NewCheckout(BaseModel):
    model_config = ConfigDict(extra="forbid")

    customer_id: Text255
    currency: Currency | None = Field(default=None, description="default: the tenant's")
    type: Literal["withdrawal"]
    max_amount: MinorUnits | None = Field(
        default=None,
        description="the most the customer may take out (and never more than the"
        " wallet's available balance)",
    )
    fixed_amount: MinorUnits | None = Field(default=None, description="exactly this, locked")
    return_url: str = Field(
        min_length=1, max_length=2048, description="https URL the customer is sent back to"
    )
    experience: Literal["web", "webview"] = "web"
    expires_in: int = Field(default=1_800, ge=60, le=86_400, description="seconds")
    locale: str = Field(default="en", pattern=r"^[a-z]{2}(?:[-_][A-Z]{2})?$")

    @model_validator(mode="after")
    def _one_cap(self) -> NewCheckout:
        if self.max_amount is not None and self.fixed_amount is not None:
            raise ValueError("give max_amount or fixed_amount, not both")
        return self


class CheckoutOut(BaseModel):
    id: uuid.UUID
    customer_id: str
    wallet_id: uuid.UUID
    currency: str
    type: Literal["withdrawal"] = "withdrawal"
    max_amount: int | None
    fixed_amount: int | None
    return_url: str
    experience: str
    locale: str
    status: Status
    payout_id: uuid.UUID | None
    amount: int | None = Field(description="what the customer took out, once completed")
    created_at: Timestamp
    expires_at: Timestamp
    completed_at: Timestamp | None


class IssuedCheckout(CheckoutOut):
    url: str = Field(description="the hosted page: send the customer there")
    client_secret: str = Field(description="the page's secret (in its url), shown this once")


AddedInstruments = Literal["unverified", "verified"]


class PageSettings(BaseModel):
    """The tenant's hosted page: the origins that may frame it (a webview's or the merchant's
    own page; none by default), and how a bank account or card the customer adds on the page is
    marked (``PUT`` replaces both: a member left out takes its default)."""

    model_config = ConfigDict(extra="forbid")

    frame_ancestors: list[
        Annotated[str, StringConstraints(pattern=r"^https://[a-z0-9.-]+(:[0-9]{1,5})?$")]
    ] = Field(
        default_factory=list, max_length=10, description="https origins, e.g. https://shop.example"
    )
    added_instruments: AddedInstruments = Field(
        default="unverified",
        description="unverified: an instrument added on the page is shown, not offered, until"
        " the merchant verifies it; verified: it is verified as it is added, and offered at once",
    )


class CheckoutList(BaseModel):
    data: list[CheckoutOut]
