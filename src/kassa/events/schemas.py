from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy.engine import Row

from kassa.ledger.schemas import Timestamp


class EventOut(BaseModel):
    id: uuid.UUID
    type: str
    created_at: Timestamp
    data: dict[str, Any]

    @classmethod
    def from_row(cls, row: Row[Any]) -> EventOut:
        return cls(id=row.id, type=row.type, created_at=row.created_at, data=row.data)
