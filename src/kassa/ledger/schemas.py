from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, PlainSerializer
from sqlalchemy.engine import Row

from kassa.kit.clock import isoformat

Timestamp = Annotated[datetime, PlainSerializer(isoformat, return_type=str)]
TransactionKind = Literal["deposit", "gift", "withdrawal", "fee", "reversal"]


class TransactionOut(BaseModel):
    id: uuid.UUID
    wallet_id: uuid.UUID | None
    kind: TransactionKind
    amount: int = Field(description="minor units of the currency")
    currency: str
    balance_before: int | None = Field(
        description="balance of the wallet account the transaction moved (cash, or gift for a "
        "gift deposit or forfeit) before it"
    )
    balance_after: int | None
    status: Literal["completed"]
    reference: str | None
    description: str | None
    metadata: dict[str, str]
    created_at: Timestamp

    @classmethod
    def from_row(cls, row: Row[Any]) -> TransactionOut:
        return cls(
            id=row.id,
            wallet_id=row.wallet_id,
            kind=row.kind,
            amount=row.amount,
            currency=row.currency,
            balance_before=row.balance_before,
            balance_after=row.balance_after,
            status=row.status,
            reference=row.reference,
            description=row.description,
            metadata=row.metadata,
            created_at=row.created_at,
        )
