from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kassa.kit.fields import Text255
from kassa.ledger.schemas import Timestamp

if TYPE_CHECKING:
    from kassa.instruments.repository import Instrument

InstrumentType = Literal[
    "SEPA_BANK_ACCOUNT", "UK_BANK_ACCOUNT", "US_BANK_ACCOUNT", "CCI_BANK_ACCOUNT", "CARD"
]

# The sensitive or type-specific fields each type takes (anything else is refused).
TYPE_FIELDS: dict[str, frozenset[str]] = {
    "SEPA_BANK_ACCOUNT": frozenset({"iban", "bic"}),
    "UK_BANK_ACCOUNT": frozenset({"sort_code", "account_number"}),
    "US_BANK_ACCOUNT": frozenset({"routing_number", "account_number", "account_type"}),
    "CCI_BANK_ACCOUNT": frozenset({"cci"}),
    "CARD": frozenset({"card_number", "expiry_month", "expiry_year"}),
}


class NewInstrument(BaseModel):
    """A bank account or card; the number is checked, masked and never stored whole."""

    model_config = ConfigDict(extra="forbid")

    type: InstrumentType
    holder_name: Text255
    iban: str | None = Field(default=None, max_length=64)
    bic: str | None = Field(default=None, max_length=11)
    sort_code: str | None = Field(default=None, max_length=16)
    account_number: str | None = Field(default=None, max_length=34)
    routing_number: str | None = Field(default=None, max_length=16)
    account_type: Literal["checking", "savings"] | None = None
    cci: str | None = Field(default=None, max_length=32)
    card_number: str | None = Field(default=None, max_length=32)
    expiry_month: int | None = None
    expiry_year: int | None = None

    def type_fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in TYPE_FIELDS[self.type]}

    def stray_fields(self) -> list[str]:
        allowed = TYPE_FIELDS[self.type] | {"type", "holder_name"}
        return sorted(name for name in self.model_fields_set if name not in allowed)


class InstrumentOut(BaseModel):
    id: uuid.UUID
    customer_id: str
    type: InstrumentType
    status: Literal["unverified", "verified"]
    holder_name: str
    display: str = Field(description="masked: never the whole number")
    last4: str
    details: dict[str, Any] = Field(description="what is not secret: bank codes, card expiry")
    fingerprint: str | None = Field(
        description="the same for every instrument with the same card or account number among "
        "this tenant's customers, and never equal across tenants (null if made before Kassa "
        "kept fingerprints)"
    )
    created_at: Timestamp
    verified_at: Timestamp | None

    @classmethod
    def from_row(cls, row: Instrument) -> InstrumentOut:
        return cls(
            id=row.id,
            customer_id=row.customer_id,
            type=row.type,
            status=row.status,
            holder_name=row.holder_name,
            display=row.display,
            last4=row.last4,
            details=dict(row.details),
            fingerprint=row.fingerprint,
            created_at=row.created_at,
            verified_at=row.verified_at,
        )


class DeletedInstrument(BaseModel):
    id: uuid.UUID
    deleted: Literal[True] = True
