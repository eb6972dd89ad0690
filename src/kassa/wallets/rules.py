"""The rules a wallet's status and currency set for moving its money, in Python.

The PostgreSQL engine applies the same rules inside ``kassa_post_wallets``; the parity table
(``tests/wallets/test_parity.py``) runs one set of cases through both and every route.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from kassa.kit.errors import KassaError, NotFound
from kassa.ledger.errors import CurrencyMismatch
from kassa.wallets.errors import WalletClosed, WalletFrozen
from kassa.wallets.schemas import effective_status


def refusal(
    *,
    status: str,
    frozen_until: datetime | None,
    wallet_currency: str,
    currency: str | None,
    refuse_frozen: bool,
    now: datetime,
) -> str | None:
    """The code of the rule a movement breaks on this wallet, or None: a closed wallet takes
    nothing, a frozen one (until its freeze runs out) gives nothing out, and a movement that
    names a currency must name the wallet's."""
    effective, _ = effective_status(status, frozen_until, now)
    if effective == "closed":
        return "wallet_closed"
    if refuse_frozen and effective == "frozen":
        return "wallet_frozen"
    if currency is not None and currency != wallet_currency:
        return "currency_mismatch"
    return None


def wallet_error(code: str, wallet_id: uuid.UUID, currency: str | None = None) -> KassaError:
    """The error for a wallet rule's code, in the same words wherever it was found."""
    if code == "not_found":
        return NotFound(f"wallet {wallet_id} not found")
    if code == "wallet_closed":
        return WalletClosed(f"wallet {wallet_id} is closed")
    if code == "wallet_frozen":
        return WalletFrozen(f"wallet {wallet_id} is frozen; it takes no withdrawals")
    if code == "currency_mismatch":
        return CurrencyMismatch(f"wallet {wallet_id} does not hold {currency}")
    raise ValueError(f"unknown wallet rule {code!r}")
