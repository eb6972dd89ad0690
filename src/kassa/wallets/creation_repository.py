"""SQL of wallet creation: one statement on PostgreSQL (the wallets, their cash and gift
accounts, their ``wallet.created`` events and any system account the tenant lacks in their
currencies), a few multi-row inserts in one ``BEGIN IMMEDIATE`` unit of work on SQLite. The
rules are ``wallets.service.create_wallets``'s; this module only writes what it planned."""

from __future__ import annotations

import json
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit import dberrors
from kassa.kit.db import Backend, Database
from kassa.ledger.tables import SYSTEM_ACCOUNT_KINDS, WALLET_ACCOUNT_KINDS


@dataclass(frozen=True)
class WalletRow:
    """A wallet to create, as the service planned it (``alias`` is drawn anew for each try)."""

    id: uuid.UUID
    customer_id: str
    currency: str
    name: str | None
    alias: str
    metadata: dict[str, str]
    event_id: uuid.UUID
    event_data: dict[str, Any]  # the wallet as the ``wallet.created`` event shows it


@dataclass(frozen=True)
class Inserted:
    """What became of one :class:`WalletRow`: created; or the customer's wallet in that
    currency (``existing_id``, ``existing_status``) was in the way; or neither (its alias was
    taken, or a concurrent twin won the race unseen): then it may be tried again."""

    created: bool
    existing_id: uuid.UUID | None = None
    existing_status: str | None = None


# Writes go to the driver as they are: an open unit of work (the caller commits), or a
# ``Database``, for which each call is its own unit of work (on PostgreSQL one statement
# sent through the pool, which commits by itself).
Target = AsyncConnection | Database

_INSERT_WALLETS_PG = """
WITH input AS (
  SELECT * FROM unnest($4::uuid[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[],
                       $10::uuid[], $11::text[])
    WITH ORDINALITY AS i(id, customer_id, currency, name, alias, metadata, event_id,
                         event_data, n)
),
system_accounts AS (
  INSERT INTO accounts (tenant_id, kind, currency, created_at)
  SELECT $1, kind.kind, used.currency, $2
  FROM (SELECT DISTINCT currency FROM input) AS used
  CROSS JOIN unnest($12::text[]) AS kind(kind)
  WHERE $3
  ON CONFLICT (tenant_id, currency, kind) WHERE wallet_id IS NULL DO NOTHING
),
created AS (
  INSERT INTO wallets (id, tenant_id, customer_id, currency, name, alias, status, metadata,
                       created_at, updated_at)
  SELECT id, $1, customer_id, currency, name, alias, 'active', metadata::jsonb, $2, $2
  FROM input ORDER BY customer_id, currency
  ON CONFLICT DO NOTHING
  RETURNING id, currency
),
wallet_accounts AS (
  INSERT INTO accounts (tenant_id, wallet_id, kind, currency, balance, held, created_at)
  SELECT $1, created.id, kind.kind, created.currency, 0, 0, $2
  FROM created CROSS JOIN unnest($13::text[]) AS kind(kind)
),
created_events AS (
  INSERT INTO events (id, tenant_id, type, data, created_at)
  SELECT input.event_id, $1, 'wallet.created', input.event_data::jsonb, $2
  FROM created JOIN input ON input.id = created.id
  ORDER BY input.n
)
SELECT created.id IS NOT NULL AS created, existing.id AS existing_id,
       existing.status AS existing_status
FROM input
LEFT JOIN created ON created.id = input.id
LEFT JOIN wallets AS existing ON existing.tenant_id = $1
  AND existing.customer_id = input.customer_id AND existing.currency = input.currency
ORDER BY input.n
"""
# Wallets go in by customer and currency: two statements that insert the same two customers
# wait for each other's rows in one order, never each for the other's (a deadlock).
# A row in the way that the statement's snapshot cannot see (a concurrent twin, committed while
# the insert waited for it) leaves ``existing`` empty: the next try, a new statement, sees it.


def _pg_arguments(
    tenant_id: uuid.UUID, rows: Sequence[WalletRow], now: datetime, *, ensure_system: bool
) -> tuple[object, ...]:
    return (
        tenant_id,
        now,
        ensure_system,
        [row.id for row in rows],
        [row.customer_id for row in rows],
        [row.currency for row in rows],
        [row.name for row in rows],
        [row.alias for row in rows],
        [orjson.dumps(row.metadata).decode() for row in rows],
        [row.event_id for row in rows],
        [orjson.dumps(row.event_data).decode() for row in rows],
        list(SYSTEM_ACCOUNT_KINDS),
        list(WALLET_ACCOUNT_KINDS),
    )


def _inserted(created: bool, existing_id: Any, existing_status: str | None) -> Inserted:
    found = None if existing_id is None else uuid.UUID(str(existing_id))
    return Inserted(bool(created), found, existing_status)


# The tenants and currencies whose system accounts are known to be committed, per database
# (so per process): their creation is then left out of the statement.
_system_ready: weakref.WeakKeyDictionary[Any, set[tuple[uuid.UUID, str]]] = (
    weakref.WeakKeyDictionary()
)


def _ready(engine: Any) -> set[tuple[uuid.UUID, str]]:
    found = _system_ready.get(engine)
    if found is None:
        found = _system_ready[engine] = set()
    return found


async def insert_wallets(
    target: Target, tenant_id: uuid.UUID, rows: Sequence[WalletRow], now: datetime
) -> list[Inserted]:
    """Create ``rows`` where nothing is in the way, each with its accounts and event; what
    became of each, in order. The tenant's system accounts for their currencies are made if
    they are missing."""
    if not rows:
        return []
    engine = target.engine.sync_engine
    currencies = {row.currency for row in rows}
    ready = _ready(engine)
    ensure_system = not all((tenant_id, currency) in ready for currency in currencies)
    if isinstance(target, AsyncConnection):
        if target.dialect.name == "postgresql":
            return await _insert_pg_in(target, tenant_id, rows, now, ensure_system=ensure_system)
        return await _insert_sqlite(target, tenant_id, rows, now, ensure_system=ensure_system)
    if target.backend is Backend.POSTGRESQL:
        inserted = await _insert_pg_pool(target, tenant_id, rows, now, ensure_system=ensure_system)
    else:
        async with target.write() as conn:
            inserted = await _insert_sqlite(conn, tenant_id, rows, now, ensure_system=ensure_system)
    # Committed now (a unit of work inside a caller's is not, and is never noted).
    ready.update((tenant_id, currency) for currency in currencies)
    return inserted


async def _insert_pg_pool(
    db: Database,
    tenant_id: uuid.UUID,
    rows: Sequence[WalletRow],
    now: datetime,
    *,
    ensure_system: bool,
) -> list[Inserted]:
    began = time.monotonic()
    arguments = _pg_arguments(tenant_id, rows, now, ensure_system=ensure_system)
    try:
        records = await db.pool.fetch(_INSERT_WALLETS_PG, *arguments)
    except Exception as error:  # noqa: BLE001 - raised again, translated or as it was
        dberrors.raise_translated(error)
    dberrors.database_answered(began)
    return [_inserted(record[0], record[1], record[2]) for record in records]


async def _insert_pg_in(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    rows: Sequence[WalletRow],
    now: datetime,
    *,
    ensure_system: bool,
) -> list[Inserted]:
    arguments = _pg_arguments(tenant_id, rows, now, ensure_system=ensure_system)
    result = await conn.exec_driver_sql(_INSERT_WALLETS_PG, arguments)
    found: Sequence[Any] = result.all()
    return [_inserted(row[0], row[1], row[2]) for row in found]


# On SQLite, as SQLAlchemy stores them: UUIDs as 32 hex digits, timestamps as UTC without
# their zone, JSON as ``json.dumps`` writes it.
_FIND_IN_THE_WAY_SQLITE = (
    "SELECT customer_id, currency, alias, id, status FROM wallets WHERE tenant_id = ?"
    " AND (customer_id IN (SELECT value FROM json_each(?))"
    " OR alias IN (SELECT value FROM json_each(?)))"
)
_INSERT_SYSTEM_SQLITE = (
    "INSERT INTO accounts (tenant_id, kind, currency, created_at) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (tenant_id, currency, kind) WHERE wallet_id IS NULL DO NOTHING"
)
_INSERT_WALLET_SQLITE = (
    "INSERT INTO wallets (id, tenant_id, customer_id, currency, name, alias, status, metadata,"
    " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)"
)
_INSERT_ACCOUNT_SQLITE = (
    "INSERT INTO accounts (tenant_id, wallet_id, kind, currency, balance, held, created_at)"
    " VALUES (?, ?, ?, ?, 0, 0, ?)"
)
_INSERT_EVENT_SQLITE = (
    "INSERT INTO events (id, tenant_id, type, data, created_at)"
    " VALUES (?, ?, 'wallet.created', ?, ?)"
)


def _sqlite_time(moment: datetime) -> str:
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}"
    )


async def _insert_sqlite(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    rows: Sequence[WalletRow],
    now: datetime,
    *,
    ensure_system: bool,
) -> list[Inserted]:
    """Writers are serialised here, so what is in the way is all seen before inserting."""
    tenant, at = tenant_id.hex, _sqlite_time(now)
    if ensure_system:
        await conn.exec_driver_sql(
            _INSERT_SYSTEM_SQLITE,
            [
                (tenant, kind, currency, at)
                for currency in sorted({row.currency for row in rows})
                for kind in SYSTEM_ACCOUNT_KINDS
            ],
        )
    found = await conn.exec_driver_sql(
        _FIND_IN_THE_WAY_SQLITE,
        (
            tenant,
            json.dumps(sorted({row.customer_id for row in rows})),
            json.dumps(sorted({row.alias for row in rows})),
        ),
    )
    by_customer: dict[tuple[str, str], tuple[uuid.UUID, str]] = {}
    aliases_taken: set[str] = set()
    in_the_way: Sequence[Any] = found.all()
    for customer_id, currency, alias, wallet_id, status in in_the_way:
        by_customer[(customer_id, currency)] = (uuid.UUID(hex=str(wallet_id)), status)
        aliases_taken.add(alias)
    results: list[Inserted] = []
    new: list[WalletRow] = []
    for row in rows:
        existing = by_customer.get((row.customer_id, row.currency))
        if existing is not None:
            results.append(Inserted(False, *existing))
        elif row.alias in aliases_taken:
            results.append(Inserted(False))
        else:
            aliases_taken.add(row.alias)
            new.append(row)
            results.append(Inserted(True))
    if new:
        await conn.exec_driver_sql(
            _INSERT_WALLET_SQLITE,
            [
                (
                    row.id.hex,
                    tenant,
                    row.customer_id,
                    row.currency,
                    row.name,
                    row.alias,
                    json.dumps(row.metadata),
                    at,
                    at,
                )
                for row in new
            ],
        )
        await conn.exec_driver_sql(
            _INSERT_ACCOUNT_SQLITE,
            [
                (tenant, row.id.hex, kind, row.currency, at)
                for row in new
                for kind in WALLET_ACCOUNT_KINDS
            ],
        )
        await conn.exec_driver_sql(
            _INSERT_EVENT_SQLITE,
            [(row.event_id.hex, tenant, json.dumps(row.event_data), at) for row in new],
        )
    return results
