"""The double-entry ledger.

Design overview
---------------
* An **account** belongs to a wallet (``cash``, ``gift``) or is a tenant's **system account**
  for one currency (``funding``, ``payouts_clearing``, ``fees``).
* A **journal transaction** is immutable and owns two or more **entries**; a positive entry raises
  its account's balance, a negative one lowers it, and per currency the entries sum to zero. On
  PostgreSQL a deferred constraint trigger refuses, at commit, any transaction that does not, and
  triggers refuse UPDATE and DELETE of journal rows on both backends.
* **Wallet accounts** cache ``balance`` and ``held`` under CHECK constraints
  (``balance >= 0``, ``0 <= held <= balance``), updated in the same database transaction as their
  entries. **System accounts** cache nothing: every transaction touches one, so a cached balance
  would be a row that every transaction in the tenant waits for. Their balance is the sum of
  their entries.
* A **hold** reserves part of a wallet account's balance (``held``). It leaves ``open`` exactly
  once: *captured* (posted as a journal transaction that spends the held money), *released* or
  *expired* (the reservation is dropped). The ``status = 'open'`` condition of the UPDATE that
  resolves it makes a second resolution find nothing.
* ``kassa verify`` recomputes every account from its entries and every ``held`` from its open
  holds.

Nothing here commits: callers pass the connection of their unit of work.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.errors import NotFound
from kassa.kit.ids import new_id
from kassa.kit.money import check_minor_units
from kassa.ledger import repository
from kassa.ledger.errors import HoldNotOpen, InsufficientFunds, UnbalancedTransaction
from kassa.ledger.tables import SYSTEM_ACCOUNT_KINDS


@dataclass(frozen=True)
class Leg:
    """One entry to post. ``wallet`` legs also move the account's cached balance."""

    account_id: int
    amount: int
    wallet: bool = False
    release_held: int = 0


@dataclass(frozen=True)
class Posting:
    tenant_id: uuid.UUID
    kind: str
    amount: int
    currency: str
    legs: list[Leg]
    created_at: datetime
    wallet_id: uuid.UUID | None = None
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    hold_id: uuid.UUID | None = None
    transaction_id: uuid.UUID = field(default_factory=new_id)


@dataclass(frozen=True)
class Posted:
    seq: int
    transaction_id: uuid.UUID
    balance_before: int | None
    balance_after: int | None


async def post(conn: AsyncConnection, posting: Posting) -> Posted:
    """Post a balanced journal transaction and move the cached balances of its wallet legs.

    The first wallet leg is the one whose balance_before/balance_after the transaction records.
    Raises ``InsufficientFunds`` if a wallet leg would leave less than zero available.
    """
    if sum(leg.amount for leg in posting.legs) != 0 or len(posting.legs) < 2:
        raise UnbalancedTransaction(f"legs of a {posting.kind} do not balance: {posting.legs}")
    balance_before = balance_after = None
    for leg in posting.legs:
        if not leg.wallet:
            continue
        after = await repository.apply_wallet_leg(
            conn, leg.account_id, leg.amount, leg.release_held
        )
        if after is None:
            raise InsufficientFunds(
                f"the wallet's available balance is lower than {-leg.amount} minor units"
            )
        if balance_after is None:
            balance_before, balance_after = after - leg.amount, after
    seq = await repository.insert_transaction(
        conn,
        {
            "id": posting.transaction_id,
            "tenant_id": posting.tenant_id,
            "wallet_id": posting.wallet_id,
            "kind": posting.kind,
            "amount": posting.amount,
            "currency": posting.currency,
            "balance_before": balance_before,
            "balance_after": balance_after,
            "status": "completed",
            "reference": posting.reference,
            "description": posting.description,
            "metadata": posting.metadata,
            "hold_id": posting.hold_id,
            "created_at": posting.created_at,
        },
    )
    await repository.insert_entries(
        conn, seq, [(leg.account_id, posting.currency, leg.amount) for leg in posting.legs]
    )
    return Posted(seq, posting.transaction_id, balance_before, balance_after)


@dataclass(frozen=True)
class HoldRequest:
    tenant_id: uuid.UUID
    wallet_id: uuid.UUID
    amount: int
    now: datetime
    expires_at: datetime | None = None
    reference: str | None = None
    hold_id: uuid.UUID = field(default_factory=new_id)


async def place_hold(conn: AsyncConnection, request: HoldRequest) -> uuid.UUID:
    """Reserve ``amount`` of a wallet's cash; ``InsufficientFunds`` if less is available."""
    check_minor_units(request.amount)
    account = await repository.wallet_account(conn, request.tenant_id, request.wallet_id, "cash")
    if account is None:
        raise NotFound("wallet not found")
    if not await repository.change_held(conn, account.id, request.amount):
        raise InsufficientFunds(
            f"the wallet's available balance is lower than {request.amount} minor units"
        )
    await repository.insert_hold(
        conn,
        {
            "id": request.hold_id,
            "tenant_id": request.tenant_id,
            "account_id": account.id,
            "wallet_id": request.wallet_id,
            "amount": request.amount,
            "currency": account.currency,
            "status": "open",
            "reference": request.reference,
            "expires_at": request.expires_at,
            "created_at": request.now,
        },
    )
    return request.hold_id


async def _close_hold(
    conn: AsyncConnection, tenant_id: uuid.UUID, hold_id: uuid.UUID, status: str, now: datetime
) -> Row[Any]:
    hold = await repository.resolve_hold(conn, tenant_id, hold_id, status, now)
    if hold is None:
        if await repository.get_hold(conn, tenant_id, hold_id) is None:
            raise NotFound("hold not found")
        raise HoldNotOpen()
    await repository.change_held(conn, hold.account_id, -hold.amount)
    return hold


async def release_hold(
    conn: AsyncConnection, tenant_id: uuid.UUID, hold_id: uuid.UUID, now: datetime
) -> None:
    await _close_hold(conn, tenant_id, hold_id, "released", now)


async def expire_hold(
    conn: AsyncConnection, tenant_id: uuid.UUID, hold_id: uuid.UUID, now: datetime
) -> None:
    await _close_hold(conn, tenant_id, hold_id, "expired", now)


@dataclass(frozen=True)
class Capture:
    """Spend an open hold: ``destinations`` name the tenant's system accounts (by kind, in the
    hold's currency) that receive the held money, and sum to the hold's amount."""

    tenant_id: uuid.UUID
    hold_id: uuid.UUID
    destinations: list[tuple[str, int]]  # (system account kind, amount)
    now: datetime
    kind: str = "withdrawal"
    reference: str | None = None
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


async def capture_hold(conn: AsyncConnection, capture: Capture) -> Posted:
    hold = await repository.resolve_hold(
        conn, capture.tenant_id, capture.hold_id, "captured", capture.now
    )
    if hold is None:
        if await repository.get_hold(conn, capture.tenant_id, capture.hold_id) is None:
            raise NotFound("hold not found")
        raise HoldNotOpen()
    if sum(amount for _, amount in capture.destinations) != hold.amount:
        raise UnbalancedTransaction("a capture must spend exactly the held amount")
    legs = [Leg(hold.account_id, -hold.amount, wallet=True, release_held=hold.amount)]
    for kind, amount in capture.destinations:
        if kind not in SYSTEM_ACCOUNT_KINDS or amount <= 0:
            raise UnbalancedTransaction(f"cannot capture {amount} into {kind!r}")
        account_id = await repository.system_account_id(
            conn, capture.tenant_id, hold.currency, kind
        )
        legs.append(Leg(account_id, amount))
    return await post(
        conn,
        Posting(
            tenant_id=capture.tenant_id,
            kind=capture.kind,
            amount=hold.amount,
            currency=hold.currency,
            legs=legs,
            created_at=capture.now,
            wallet_id=hold.wallet_id,
            reference=capture.reference,
            description=capture.description,
            metadata=capture.metadata,
            hold_id=hold.id,
        ),
    )
