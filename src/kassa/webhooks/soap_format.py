"""Deliveries to a Soap-format endpoint: Soap's checkout webhooks, so that a merchant's
existing Soap handler takes them unchanged.

``checkout.completed`` is sent as ``checkout.succeeded``, ``checkout.expired`` as itself, and
``payout.failed`` of a payout a checkout made (its reference is ``checkout-<session id>``) as
``checkout.failed``; any other payout's ``payout.failed`` is not for a Soap endpoint (``sends``
says so, and the worker cancels that delivery unsent). The body is ``{event_id, type, data: {id,
type: "withdrawal", charge: {id, status, amount_cents, transaction_type: "debit"}, customer:
{id}, line_items: [], line_items_total_amount_cents: null}}``; ``SOAP-WEBHOOK-SIGNATURE:
t=<unix>,v1=<hex>`` where ``v1`` is the HMAC-SHA256, under the endpoint's secret as Kassa
showed it (UTF-8), of ``"<t>.<raw body>"``.

Why a payout event and not a checkout event of its own: a payout fails long after its session
closed, in the payout rail's or the merchant's transaction, which the payouts package writes
without knowing checkouts (the layering forbids it); the payout's event already carries all a
``checkout.failed`` shows (the reference naming the session, the customer, the amount).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import datetime
from typing import Any

import orjson

from kassa.checkouts.payout_reference import checkout_of
from kassa.events.schemas import EventOut

# Kassa's event -> Soap's.
TYPES = {
    "checkout.completed": "checkout.succeeded",
    "checkout.expired": "checkout.expired",
    "payout.failed": "checkout.failed",
}
# The events Kassa writes for a payout (data: the payout), rather than for a checkout.
PAYOUT_EVENTS = frozenset({"payout.failed"})


def sends(event_type: str, data: Any) -> bool:
    """Whether a Soap endpoint is sent this event: a payout's only if a checkout made it."""
    if event_type not in TYPES:
        return False
    if event_type in PAYOUT_EVENTS:
        return isinstance(data, dict) and checkout_of(data.get("reference")) is not None
    return True


def body(event: EventOut) -> bytes:
    data: dict[str, Any] = event.data
    if event.type in PAYOUT_EVENTS:
        checkout_id = checkout_of(data.get("reference"))
        assert checkout_id is not None, "sends() keeps other payouts' events from here"
        payout_id, status = data["id"], "failed"
    else:
        checkout_id = uuid.UUID(str(data["id"]))
        payout_id, status = data.get("payout_id"), "succeeded"
    charge = None
    if payout_id is not None:
        charge = {
            "id": str(payout_id),
            "status": status,
            "amount_cents": data.get("amount"),
            "transaction_type": "debit",
        }
    document = {
        "event_id": str(event.id),
        "type": TYPES[event.type],
        "data": {
            "id": "chk_" + checkout_id.hex,
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
