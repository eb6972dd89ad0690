"""The reference of the payout a checkout session makes: ``checkout-<session id>``. Unique per
tenant, so a session pays out once; and how a payout's events name their session (the Soap
webhook format reads it back). Imports nothing of Kassa, so that anything may use it."""

from __future__ import annotations

import uuid

PREFIX = "checkout-"


def payout_reference(checkout_id: uuid.UUID) -> str:
    return f"{PREFIX}{checkout_id}"


def checkout_of(reference: object) -> uuid.UUID | None:
    """The session a payout's reference names, or None (a payout made some other way)."""
    if not isinstance(reference, str) or not reference.startswith(PREFIX):
        return None
    try:
        return uuid.UUID(reference.removeprefix(PREFIX))
    except ValueError:
        return None
