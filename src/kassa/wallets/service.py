"""Wallets: creation, reads, freezing and closing. Money in and out is ``movements``."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events import service as events
from kassa.kit.errors import NotFound, ValidationFailed
from kassa.kit.ids import new_id
from kassa.kit.pagination import Page, split_page
from kassa.ledger import repository as ledger_repository
from kassa.ledger.schemas import TransactionOut
from kassa.wallets import creation_repository, movements, repository
from kassa.wallets.errors import WalletClosed, WalletExists, WalletNotEmpty
from kassa.wallets.schemas import FreezeIn, NewWallet, WalletOut

# Tries per wallet: a fresh alias each time the one drawn is taken (or a race was lost).
ALIAS_ATTEMPTS = 8


def _new_alias() -> str:
    return str(10**9 + secrets.randbelow(9 * 10**9))


Creation = WalletOut | WalletExists


async def create_wallet(
    target: creation_repository.Target, tenant_id: uuid.UUID, body: NewWallet, now: datetime
) -> WalletOut:
    """One wallet (:func:`create_wallets`); a refusal raises."""
    [done] = await create_wallets(target, tenant_id, [body], now)
    if isinstance(done, WalletExists):
        raise done
    return done


async def create_wallets(
    target: creation_repository.Target,
    tenant_id: uuid.UUID,
    bodies: Sequence[NewWallet],
    now: datetime,
) -> list[Creation]:
    """Wallets for customers, each empty and active, with its cash and gift accounts (and the
    tenant's system accounts for its currency) and its ``wallet.created`` event; or refused
    with ``WalletExists``, each on its own, in order.

    One wallet per customer and currency, ever: a closed one still counts (and says so), and
    so does one made earlier in the same list. ``target`` is the caller's unit of work, or the
    database, where each wallet commits on its own (the single route and the bulk import both
    come here). A wallet whose alias was taken, or that lost a race to a concurrent twin the
    database had not shown yet, is tried again: the twin is then seen, and refuses it."""
    done: list[Creation | None] = [None] * len(bodies)
    # What this call decided per customer and currency: later items with the same are refused.
    decided: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}
    pending = list(range(len(bodies)))
    for _ in range(ALIAS_ATTEMPTS):
        now_tried: list[int] = []
        held_back: list[int] = []
        keys: set[tuple[str, str]] = set()
        for index in pending:
            key = (bodies[index].customer_id, bodies[index].currency)
            if key in decided:
                done[index] = _exists(bodies[index], *decided[key])
            elif key in keys:
                held_back.append(index)  # a twin in this call: tried once the first is decided
            else:
                keys.add(key)
                now_tried.append(index)
        made = [_wallet(bodies[index], now) for index in now_tried]
        rows = [_row(wallet) for wallet in made]
        inserted = await creation_repository.insert_wallets(target, tenant_id, rows, now)
        again: list[int] = []
        for index, wallet, outcome in zip(now_tried, made, inserted, strict=True):
            key = (bodies[index].customer_id, bodies[index].currency)
            if outcome.created:
                done[index] = wallet
                decided[key] = (wallet.id, "active")
            elif outcome.existing_id is not None and outcome.existing_status is not None:
                done[index] = _exists(bodies[index], outcome.existing_id, outcome.existing_status)
                decided[key] = (outcome.existing_id, outcome.existing_status)
            else:
                again.append(index)
        pending = sorted(again + held_back)
        if not pending:
            return [item for item in done if item is not None]
    raise RuntimeError(f"no free alias for a wallet in {ALIAS_ATTEMPTS} tries")


def _wallet(body: NewWallet, now: datetime) -> WalletOut:
    """A new wallet as it is the moment it is made, with a fresh id and alias."""
    return WalletOut(
        id=uuid.uuid4(),
        customer_id=body.customer_id,
        currency=body.currency,
        name=body.name,
        alias=_new_alias(),
        status="active",
        frozen_until=None,
        freeze_reason=None,
        balance=0,
        held_balance=0,
        available_balance=0,
        gift_balance=0,
        total_balance=0,
        metadata=body.metadata,
        created_at=now,
        updated_at=now,
    )


def _row(wallet: WalletOut) -> creation_repository.WalletRow:
    return creation_repository.WalletRow(
        id=wallet.id,
        customer_id=wallet.customer_id,
        currency=wallet.currency,
        name=wallet.name,
        alias=wallet.alias,
        metadata=wallet.metadata,
        event_id=new_id(),  # as ``events.record`` makes it
        # What ``events.record`` writes for it.
        event_data=wallet.model_dump(mode="json"),
    )


def _exists(body: NewWallet, wallet_id: uuid.UUID, status: str) -> WalletExists:
    closed = " (closed: a customer's wallet is not made again)" if status == "closed" else ""
    return WalletExists(
        f"customer {body.customer_id!r} already has a {body.currency} wallet{closed}",
        wallet_id=str(wallet_id),
    )


async def _changed(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, event: str, now: datetime
) -> WalletOut:
    """The wallet after a change, with the change's event written in the same transaction."""
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    await events.record(conn, tenant_id, event, wallet, now)
    return wallet


async def get_wallet(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, now: datetime
) -> WalletOut:
    row = await repository.get_wallet(conn, tenant_id, wallet_id)
    if row is None:
        raise NotFound(f"wallet {wallet_id} not found")
    return WalletOut.from_row(row, now)


async def lock_for_change(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, now: datetime
) -> WalletOut:
    """The wallet, with its accounts locked until the unit of work ends (on PostgreSQL; SQLite
    serialises writers already), so a concurrent freeze or close is seen or waits."""
    await ledger_repository.lock_wallet_accounts(conn, tenant_id, wallet_id)
    return await get_wallet(conn, tenant_id, wallet_id, now)


async def list_wallets(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    *,
    customer_id: str | None,
    currency: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
    now: datetime,
) -> Page[WalletOut]:
    before_seq = None
    if starting_after is not None:
        before_seq = await repository.wallet_seq(conn, tenant_id, starting_after)
        if before_seq is None:
            raise NotFound(f"wallet {starting_after} not found")
    rows = await repository.list_wallets(
        conn,
        tenant_id,
        customer_id=customer_id,
        currency=currency,
        before_seq=before_seq,
        limit=limit + 1,
    )
    page, has_more = split_page(list(rows), limit)
    return Page[WalletOut](data=[WalletOut.from_row(row, now) for row in page], has_more=has_more)


async def freeze(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, body: FreezeIn, now: datetime
) -> WalletOut:
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    if wallet.status == "closed":
        raise WalletClosed(f"wallet {wallet_id} is closed")
    if body.until is not None and body.until <= now:
        raise ValidationFailed(
            "until must be in the future",
            errors=[{"field": "until", "code": "in_the_past", "message": "must be in the future"}],
        )
    if (wallet.status, wallet.frozen_until, wallet.freeze_reason) == (
        "frozen",
        body.until,
        body.reason,
    ):
        return wallet  # frozen just so already: nothing changes, no event
    await repository.set_status(
        conn,
        tenant_id,
        wallet_id,
        {
            "status": "frozen",
            "frozen_until": body.until,
            "freeze_reason": body.reason,
            "updated_at": now,
        },
    )
    return await _changed(conn, tenant_id, wallet_id, "wallet.frozen", now)


async def unfreeze(
    conn: AsyncConnection, tenant_id: uuid.UUID, wallet_id: uuid.UUID, now: datetime
) -> WalletOut:
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    if wallet.status == "closed":
        raise WalletClosed(f"wallet {wallet_id} is closed")
    if wallet.status == "active":
        return wallet  # active already (or its freeze ran out): nothing changes, no event
    await repository.set_status(
        conn,
        tenant_id,
        wallet_id,
        {"status": "active", "frozen_until": None, "freeze_reason": None, "updated_at": now},
    )
    return await _changed(conn, tenant_id, wallet_id, "wallet.unfrozen", now)


async def close(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    now: datetime,
    *,
    forfeit_gift: bool = False,
) -> WalletOut:
    """Close a wallet with nothing in it. Its accounts are locked first, so a deposit racing
    with the close either lands before it (and the close is refused) or finds it closed.

    Gift credit can be spent but never withdrawn, so a wallet holding some could never close:
    with ``forfeit_gift`` its gift balance goes back to ``funding`` (a ``reversal``
    transaction with its ``wallet.debited`` event) in the same unit of work as the close."""
    accounts = await ledger_repository.lock_wallet_accounts(conn, tenant_id, wallet_id)
    if not accounts:
        raise NotFound(f"wallet {wallet_id} not found")
    wallet = await get_wallet(conn, tenant_id, wallet_id, now)
    if wallet.status == "closed":
        return wallet
    if wallet.balance or wallet.held_balance:
        raise WalletNotEmpty(
            f"wallet {wallet_id} still holds {wallet.balance} minor units of cash "
            f"({wallet.held_balance} of them held); withdraw them first"
        )
    if wallet.gift_balance and not forfeit_gift:
        raise WalletNotEmpty(
            f"wallet {wallet_id} still holds {wallet.gift_balance} minor units of gift credit, "
            "which cannot be withdrawn; close it with forfeit_gift=true to give them up"
        )
    if wallet.gift_balance:
        forfeit = movements.MoneyRequest(
            tenant_id,
            wallet_id,
            movements.GIFT_FORFEIT,
            wallet.gift_balance,
            description="gift credit forfeited when the wallet was closed",
        )
        await movements.move_in(conn, forfeit, now)
    await repository.set_status(
        conn,
        tenant_id,
        wallet_id,
        {"status": "closed", "frozen_until": None, "updated_at": now},
    )
    return await _changed(conn, tenant_id, wallet_id, "wallet.closed", now)


async def list_transactions(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    *,
    kind: str | None,
    starting_after: uuid.UUID | None,
    limit: int,
) -> Page[TransactionOut]:
    if await repository.wallet_seq(conn, tenant_id, wallet_id) is None:
        raise NotFound(f"wallet {wallet_id} not found")
    before_seq = None
    if starting_after is not None:
        after = await ledger_repository.get_transaction(conn, tenant_id, starting_after)
        if after is None or after.wallet_id != wallet_id:
            raise NotFound(f"transaction {starting_after} not found")
        before_seq = after.seq
    rows = await ledger_repository.list_wallet_transactions(
        conn, tenant_id, wallet_id, kind=kind, before_seq=before_seq, limit=limit + 1
    )
    page, has_more = split_page(list(rows), limit)
    return Page[TransactionOut](
        data=[TransactionOut.from_row(row) for row in page], has_more=has_more
    )


async def get_transaction(
    conn: AsyncConnection, tenant_id: uuid.UUID, transaction_id: uuid.UUID
) -> TransactionOut:
    row = await ledger_repository.get_transaction(conn, tenant_id, transaction_id)
    if row is None:
        raise NotFound(f"transaction {transaction_id} not found")
    return TransactionOut.from_row(row)
