from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel

from kassa.ledger.schemas import Timestamp

if TYPE_CHECKING:
    from kassa.events.repository import Event

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
    "payout.sca_required",
    "payout.sca_completed",
    "payout.sca_failed",
    "checkout.created",
    "checkout.completed",
    "checkout.cancelled",
    "checkout.expired",
]


class EventOut(BaseModel):
    id: uuid.UUID
    type: EventType
    created_at: Timestamp
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: Event) -> EventOut:
        return cls(id=row.id, type=row.type, created_at=row.created_at, data=row.data)
