"""The rules a wallet's status and currency set for moving its money, in Python.

The PostgreSQL engine applies the same rules inside ``kassa_post_wallets``; the parity table
(``tests/wallets/test_parity.py``) runs one set of cases through both and every route.
"""

from __future__ import annotations

from datetime import datetime

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
