"""Finding a wallet by id, or by customer and currency, as the dialects do on every request.

What is found is a ``WalletRef``: what never changes about a wallet once it exists (wallets are
closed, never deleted or renamed). So a process keeps the last ``CACHED`` it found, and a
busy dialect route costs no read: what changes (balances, status) comes back from the movement
itself (``Moved.wallet``).
"""

from __future__ import annotations

import uuid
import weakref
from collections import OrderedDict

from kassa.auth.service import Principal
from kassa.kit.db import Database
from kassa.kit.errors import NotFound
from kassa.wallets import repository
from kassa.wallets.money import WalletRef

CACHED = 20_000

_Key = tuple[uuid.UUID, str, str]  # tenant, and ("id", wallet id) or (customer id, currency)
_caches: weakref.WeakKeyDictionary[Database, OrderedDict[_Key, WalletRef]] = (
    weakref.WeakKeyDictionary()
)


async def find(
    db: Database,
    tenant_id: uuid.UUID,
    *,
    wallet_id: uuid.UUID | None = None,
    customer_id: str | None = None,
    currency: str | None = None,
) -> WalletRef | None:
    """The tenant's wallet by id, or by customer and currency; None if it has none."""
    if wallet_id is not None:
        key: _Key = (tenant_id, "id", str(wallet_id))
    else:
        assert customer_id is not None
        assert currency is not None
        key = (tenant_id, customer_id, currency)
    cache = _caches.setdefault(db, OrderedDict())
    found = cache.get(key)
    if found is not None:
        cache.move_to_end(key)
        return found
    row = await repository.find_wallet(
        db, tenant_id, wallet_id=wallet_id, customer_id=customer_id, currency=currency
    )
    if row is None:
        return None  # not kept: the wallet may be created any moment
    found = WalletRef(
        row.id, row.customer_id, row.currency, row.name, row.alias, row.metadata, row.created_at
    )
    cache[key] = found
    if len(cache) > CACHED:
        cache.popitem(last=False)
    return found


async def check_owned(db: Database, principal: Principal, wallet_id: uuid.UUID) -> None:
    """For a customer token, 404 unless the wallet is its customer's (in the words of a wallet
    that does not exist); an API key passes (what follows is scoped by tenant)."""
    if principal.customer_id is None:
        return
    found = await find(db, principal.tenant_id, wallet_id=wallet_id)
    if found is None or not principal.owns(found.customer_id):
        raise NotFound(f"wallet {wallet_id} not found")
