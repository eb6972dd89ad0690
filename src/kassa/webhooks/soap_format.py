"""Deliveries to a Soap-format endpoint: Soap's checkout webhooks, so that a merchant's
existing Soap handler takes them unchanged.

``checkout.completed`` is sent as ``checkout.succeeded`` and ``checkout.expired`` as itself,
with the body ``{event_id, type, data: {id, type: "withdrawal", charge: {id, status,
amount_cents, transaction_type: "debit"}, customer: {id}, line_items: [],
line_items_total_amount_cents: null}}``; ``SOAP-WEBHOOK-SIGNATURE: t=<unix>,v1=<hex>`` where
``v1`` is the HMAC-SHA256, under the endpoint's secret as Kassa showed it (UTF-8), of
``"<t>.<raw body>"``.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

import orjson

from kassa.events.schemas import EventOut

# Kassa's event -> Soap's.
TYPES = {"checkout.completed": "checkout.succeeded", "checkout.expired": "checkout.expired"}


def body(event: EventOut) -> bytes:
    data: dict[str, Any] = event.data
    checkout = "chk_" + uuid.UUID(str(data["id"])).hex
    charge = None
    if data.get("payout_id") is not None:
        charge = {
            "id": str(data["payout_id"]),
            "status": "succeeded",
            "amount_cents": data.get("amount"),
            "transaction_type": "debit",
        }
    document = {
        "event_id": str(event.id),
        "type": TYPES[event.type],
        "data": {
            "id": checkout,
            "type": "withdrawal",
            "charge": charge,
            "customer": {"id": data["customer_id"]},
            "line_items": [],
            "line_items_total_amount_cents": None,
        },
    }
    return orjson.dumps(document)


def signature(raw: bytes, secret: str, at: datetime) -> str:
    stamp = str(int(at.timestamp()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def headers(raw: bytes, secret: str, at: datetime) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "SOAP-WEBHOOK-SIGNATURE": signature(raw, secret, at),
    }
