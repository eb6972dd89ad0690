import uuid

from kassa.kit.errors import KassaError


class InsufficientFunds(KassaError):
    code = "insufficient_funds"
    status = 409
    title = "The wallet's available balance is too low"


class DuplicateReference(KassaError):
    code = "duplicate_reference"
    status = 409
    title = "A transaction with this reference already exists"


# What holds a reference: ("transaction" or "payout", its id).
Holder = tuple[str, uuid.UUID]


def duplicate_reference(
    reference: str | None = None, holder: Holder | None = None
) -> DuplicateReference:
    """The one refusal of a reference used before, whichever path or constraint found it; it
    names what holds the reference (``transaction_id`` or ``payout_id``) when that is known
    (a unique index that had the last word on a race does not say)."""
    named = "the reference" if reference is None else f"reference {reference!r}"
    if holder is None:
        return DuplicateReference(
            f"{named} was already used by a transaction or payout of this tenant;"
            " nothing was done twice",
            reference=reference,
        )
    kind, holder_id = holder
    refused = DuplicateReference(
        f"{named} was already used by {kind} {holder_id}; nothing was done twice",
        reference=reference,
    )
    refused.extra[f"{kind}_id"] = str(holder_id)
    return refused


class CurrencyMismatch(KassaError):
    code = "currency_mismatch"
    status = 422
    title = "The currency does not match the wallet's currency"


class HoldNotOpen(KassaError):
    code = "hold_not_open"
    status = 409
    title = "The hold was already captured, released or expired"


class UnbalancedTransaction(Exception):
    """A bug, never a client error: the code tried to post legs that do not sum to zero."""
