from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.engine import Row

from kassa.ledger.schemas import Timestamp

EventType = Literal[
    "wallet.created",
    "wallet.credited",
    "wallet.debited",
    "wallet.frozen",
    "wallet.unfrozen",
    "wallet.closed",
    "payout.created",
    "payout.pending",
    "payout.processing",
    "payout.completed",
    "payout.failed",
    "payout.cancelled",
]


class EventOut(BaseModel):
    id: uuid.UUID
    type: EventType
    created_at: Timestamp
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> EventOut:
        return cls(id=row.id, type=row.type, created_at=row.created_at, data=row.data)
