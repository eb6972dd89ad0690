"""Deliveries to a Paysafe-format endpoint: Paysafe's transaction update for each status change
of a withdrawal, so that a merchant's existing Paysafe webhook handler takes them unchanged.

The body is ``{id, eventId, eventType, timestamp, operationType, status, withdrawal}`` with the
withdrawal as the Paysafe dialect shows it; ``Signature`` is base64(HMAC-SHA256(key, raw body)),
the key being the endpoint's signing secret as Kassa showed it (``whsec_…``, UTF-8). Only the
current secret signs (Paysafe's header holds one signature): after a roll, switch the receiver's
key first. The same outbox worker sends them, with the same retries.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid

import orjson

from kassa.compat.paysafe.documents import timestamp, withdrawal
from kassa.events.schemas import EventOut
from kassa.payouts.schemas import PayoutOut


def instrument_of(data: object) -> uuid.UUID | None:
    """The payout's instrument named in a payout event's data (None for any other data)."""
    if isinstance(data, dict) and isinstance(data.get("instrument_id"), str):
        try:
            return uuid.UUID(data["instrument_id"])
        except ValueError:
            return None
    return None


def body(event: EventOut, instrument_types: dict[uuid.UUID, str]) -> bytes:
    payout = PayoutOut.model_validate(event.data)
    shown = withdrawal(payout, instrument_types[payout.instrument_id])
    document = {
        "id": shown["id"],
        "eventId": str(event.id),
        "eventType": "TRANSACTION_UPDATE",
        "timestamp": timestamp(event.created_at),
        "operationType": "WITHDRAWAL",
        "status": shown["status"],
        "withdrawal": shown,
    }
    return orjson.dumps(document)


def signature(raw: bytes, secret: str) -> str:
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def headers(raw: bytes, secret: str) -> dict[str, str]:
    return {"content-type": "application/json", "Signature": signature(raw, secret)}
