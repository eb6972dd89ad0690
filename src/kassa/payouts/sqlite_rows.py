"""The rows of a payout's changes on SQLite: hand-written statements for the writer thread.

``engine_sqlite`` runs each change of a payout in the process's one SQLite writer; what it reads
and writes is here, one function per step: the payout, the facts its rules read (the wallet
with its cash account, the instrument, the tenant's payment options), the reference's holder,
the hold placed, released, expired or captured, the event. Every row is the one the SQLAlchemy
path writes, in its encodings, so that SQLAlchemy's reads and ``kassa verify`` see no
difference: UUIDs as 32 hex digits (``Uuid``), timestamps as ``kit.db.UtcDateTime`` stores them
on SQLite (UTC, without its zone), JSON as SQLAlchemy's ``json.dumps``. The ledger's rows are
``ledger.service``'s (``place_hold``, ``release_hold``/``expire_hold``, ``capture_hold`` and its
``post``), statement for statement, with the same refusals in the same words.

A statement's text is its key in the connection's statement cache: each is prepared once. The
tenant's payment options are parsed once per stored text (``_parsed_options``), not per change.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

from kassa.kit.errors import NotFound
from kassa.kit.ids import new_id
from kassa.ledger.errors import Holder, HoldNotOpen, InsufficientFunds, UnbalancedTransaction
from kassa.ledger.tables import SYSTEM_ACCOUNT_KINDS
from kassa.payouts import lifecycle
from kassa.payouts.lifecycle import InstrumentFacts, WalletFacts
from kassa.payouts.repository import Payout
from kassa.payouts.schemas import PaymentOptions


def stored_time(moment: datetime) -> str:
    """A timestamp as ``kit.db.UtcDateTime`` stores it on SQLite: UTC, without its zone."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the database")
    m = moment.astimezone(UTC)
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d} "
        f"{m.hour:02d}:{m.minute:02d}:{m.second:02d}.{m.microsecond:06d}"
    )


def read_time(stored: str) -> datetime:
    """A ``UtcDateTime`` as SQLAlchemy reads it back on SQLite."""
    return datetime.fromisoformat(stored).replace(tzinfo=UTC)


def as_stored(moment: datetime) -> datetime:
    """``moment`` as it reads back once stored (UTC): what a re-read of the row would show."""
    return read_time(stored_time(moment))


# -- the payout row -------------------------------------------------------------------------------

_FIELDS = tuple(Payout.__dataclass_fields__)
_UUIDS = frozenset({"id", "tenant_id", "wallet_id", "instrument_id", "hold_id", "transaction_id"})
_JSON = frozenset({"fees", "metadata", "history"})
_TIMES = frozenset(
    {
        "next_check_at",
        "expires_at",
        "pending_expires_at",
        "created_at",
        "updated_at",
        "worker_failing_since",
        "worker_retry_at",
    }
)


def _same(value: Any) -> Any:
    return value


def _hex(value: uuid.UUID) -> str:
    return value.hex


def _codec(name: str) -> tuple[Callable[[Any], Any], Callable[[Any], Any]]:
    """How one column of ``payouts`` is read and written (``None`` passes as it is)."""
    if name in _UUIDS:
        return uuid.UUID, _hex
    if name in _JSON:
        return json.loads, json.dumps
    if name in _TIMES:
        return read_time, stored_time
    return _same, _same


_READERS, _WRITERS = zip(*(_codec(name) for name in _FIELDS), strict=True)
_CHANGING = (
    "status",
    "status_reason",
    "history",
    "updated_at",
    "hold_id",
    "pending_expires_at",
    "next_check_at",
    "transaction_id",
    "connector_reference",
)
_CHANGING_WRITERS = tuple(_WRITERS[_FIELDS.index(name)] for name in _CHANGING)

_READ_PAYOUT = f"SELECT {', '.join(_FIELDS)} FROM payouts WHERE id = ?1 AND tenant_id = ?2"
_INSERT_PAYOUT = (
    f"INSERT INTO payouts ({', '.join(_FIELDS)})"
    f" VALUES ({', '.join(f'?{n}' for n in range(1, len(_FIELDS) + 1))})"
)
_UPDATE_PAYOUT = (
    "UPDATE payouts SET "
    + ", ".join(f"{name} = ?{n}" for n, name in enumerate(_CHANGING, start=2))
    + " WHERE id = ?1"
)
# ``repository.record_submission``: the rail's reference, and when to ask it next.
_SUBMITTED = (
    "UPDATE payouts SET connector_reference = ?2, next_check_at = ?3"
    " WHERE id = ?1 AND status = 'PROCESSING'"
)
# ``repository.clear_failures``.
_CLEAR_FAILURES = (
    "UPDATE payouts SET worker_failures = 0, worker_error = NULL, worker_failing_since = NULL,"
    " worker_retry_at = NULL WHERE id = ?1 AND worker_failures > 0"
)


def _encoded(value: Any, write: Callable[[Any], Any]) -> Any:
    return None if value is None else write(value)


def read_payout(
    conn: sqlite3.Connection, tenant_id: uuid.UUID, payout_id: uuid.UUID
) -> Payout | None:
    row = conn.execute(_READ_PAYOUT, (payout_id.hex, tenant_id.hex)).fetchone()
    if row is None:
        return None
    values: list[Any] = [
        None if value is None else read(value) for read, value in zip(_READERS, row, strict=True)
    ]
    return Payout(*values)


def insert_payout(conn: sqlite3.Connection, payout: Payout) -> None:
    values = (getattr(payout, name) for name in _FIELDS)
    conn.execute(_INSERT_PAYOUT, tuple(map(_encoded, values, _WRITERS)))


def update_payout(conn: sqlite3.Connection, payout: Payout) -> None:
    """Write what a move changes: its status and reason, history, hold, deadlines, capture."""
    values = (getattr(payout, name) for name in _CHANGING)
    conn.execute(_UPDATE_PAYOUT, (payout.id.hex, *map(_encoded, values, _CHANGING_WRITERS)))


def record_submission(
    conn: sqlite3.Connection, payout_id: uuid.UUID, reference: str | None, check_at: datetime
) -> None:
    conn.execute(_SUBMITTED, (payout_id.hex, reference, stored_time(check_at)))


def clear_failures(conn: sqlite3.Connection, payout_id: uuid.UUID) -> None:
    conn.execute(_CLEAR_FAILURES, (payout_id.hex,))


# -- what the rules read --------------------------------------------------------------------------

_WALLET = (
    "SELECT w.status, w.frozen_until, w.currency, w.customer_id, c.id, c.currency"
    " FROM wallets w JOIN accounts c"
    " ON c.wallet_id = w.id AND c.kind = 'cash' AND c.tenant_id = w.tenant_id"
    " WHERE w.tenant_id = ?1 AND w.id = ?2"
)
# ``instruments.service.find``: any live instrument of the tenant.
_INSTRUMENT = (
    "SELECT customer_id, type, status FROM payment_instruments"
    " WHERE tenant_id = ?1 AND id = ?2 AND deleted_at IS NULL"
)
_OPTIONS = "SELECT options, pending_ttl_seconds FROM payment_options WHERE tenant_id = ?1"
# ``references.service.holder``: a reference is unique per tenant across transactions and
# payouts.
_REFERENCE_HOLDER = (
    "SELECT 'transaction', id FROM journal_transactions WHERE tenant_id = ?1 AND reference = ?2"
    " UNION ALL SELECT 'payout', id FROM payouts WHERE tenant_id = ?1 AND reference = ?2 LIMIT 1"
)


class Wallet(NamedTuple):
    facts: WalletFacts
    cash_account: int
    cash_currency: str


def wallet(conn: sqlite3.Connection, tenant_id: uuid.UUID, wallet_id: uuid.UUID) -> Wallet | None:
    row = conn.execute(_WALLET, (tenant_id.hex, wallet_id.hex)).fetchone()
    if row is None:
        return None
    status, frozen_until, currency, customer_id, cash_account, cash_currency = row
    frozen = None if frozen_until is None else read_time(frozen_until)
    return Wallet(WalletFacts(status, frozen, currency, customer_id), cash_account, cash_currency)


def instrument(
    conn: sqlite3.Connection, tenant_id: uuid.UUID, instrument_id: uuid.UUID
) -> InstrumentFacts | None:
    row = conn.execute(_INSTRUMENT, (tenant_id.hex, instrument_id.hex)).fetchone()
    return None if row is None else InstrumentFacts(*row)


def tenant_options(conn: sqlite3.Connection, tenant_id: uuid.UUID) -> PaymentOptions:
    """``options.get_options``: none stored is no option at all."""
    row = conn.execute(_OPTIONS, (tenant_id.hex,)).fetchone()
    return _NO_OPTIONS if row is None else _parsed_options(*row)


_NO_OPTIONS = PaymentOptions()


@functools.lru_cache(maxsize=1024)
def _parsed_options(stored: str, pending_ttl_seconds: int) -> PaymentOptions:
    """The stored options as ``options.get_options`` parses them (read only, so shared)."""
    parsed = {"options": json.loads(stored), "pending_ttl_seconds": pending_ttl_seconds}
    return PaymentOptions.model_validate(parsed)


def reference_holder(
    conn: sqlite3.Connection, tenant_id: uuid.UUID, reference: str
) -> Holder | None:
    row = conn.execute(_REFERENCE_HOLDER, (tenant_id.hex, reference)).fetchone()
    return None if row is None else (row[0], uuid.UUID(row[1]))


# -- the ledger's rows ----------------------------------------------------------------------------

# ``ledger.repository.change_held``: refused (no row) if less than ``delta`` is available.
_CHANGE_HELD = (
    "UPDATE accounts SET held = held + ?1 WHERE id = ?2 AND balance - held >= ?1 RETURNING id"
)
_INSERT_HOLD = (
    "INSERT INTO holds (id, tenant_id, account_id, wallet_id, amount, currency, status,"
    " reference, expires_at, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'open', ?7, NULL, ?8)"
)
# ``ledger.repository.resolve_hold``: an open hold leaves ``open`` once.
_RESOLVE_HOLD = (
    "UPDATE holds SET status = ?3, resolved_at = ?4"
    " WHERE id = ?1 AND tenant_id = ?2 AND status = 'open'"
    " RETURNING account_id, amount, currency, wallet_id"
)
_HOLD_EXISTS = "SELECT 1 FROM holds WHERE id = ?1 AND tenant_id = ?2"
_SYSTEM_ACCOUNT = (
    "SELECT id FROM accounts"
    " WHERE tenant_id = ?1 AND currency = ?2 AND kind = ?3 AND wallet_id IS NULL"
)
# ``ledger.repository.apply_wallet_leg``.
_APPLY_WALLET_LEG = (
    "UPDATE accounts SET balance = balance + ?1, held = held - ?2"
    " WHERE id = ?3 AND (balance + ?1) - (held - ?2) >= 0 RETURNING balance"
)
_INSERT_TRANSACTION = (
    "INSERT INTO journal_transactions (id, tenant_id, wallet_id, kind, amount, currency,"
    " balance_before, balance_after, status, reference, description, metadata, hold_id,"
    " created_at) VALUES (?1, ?2, ?3, 'withdrawal', ?4, ?5, ?6, ?7, 'completed', NULL, ?8, ?9,"
    " ?10, ?11)"
)
_INSERT_ENTRY = (
    "INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)"
    " VALUES (?1, ?2, ?3, ?4)"
)
_INSERT_EVENT = (
    "INSERT INTO events (id, tenant_id, type, data, created_at) VALUES (?1, ?2, ?3, ?4, ?5)"
)


class _Hold(NamedTuple):
    account_id: int
    amount: int
    currency: str
    wallet_id: str  # as stored: 32 hex digits


def place_hold(
    conn: sqlite3.Connection, payout: Payout, on: Wallet, hold_id: uuid.UUID, now: datetime
) -> bool:
    """Hold the payout's amount and fee on the wallet's cash; False if less is available."""
    total = lifecycle.hold_total(payout)
    if conn.execute(_CHANGE_HELD, (total, on.cash_account)).fetchone() is None:
        return False
    conn.execute(
        _INSERT_HOLD,
        (
            hold_id.hex,
            payout.tenant_id.hex,
            on.cash_account,
            payout.wallet_id.hex,
            total,
            on.cash_currency,
            lifecycle.hold_reference(payout),
            stored_time(now),
        ),
    )
    return True


def _resolve_hold(
    conn: sqlite3.Connection, tenant_id: uuid.UUID, hold_id: uuid.UUID, status: str, now: datetime
) -> _Hold:
    """Move an open hold to ``status``; refused as ``ledger.service`` refuses it."""
    keys = (hold_id.hex, tenant_id.hex)
    row = conn.execute(_RESOLVE_HOLD, (*keys, status, stored_time(now))).fetchone()
    if row is None:
        if conn.execute(_HOLD_EXISTS, keys).fetchone() is None:
            raise NotFound("hold not found")
        raise HoldNotOpen()
    return _Hold(*row)


def close_hold(
    conn: sqlite3.Connection, tenant_id: uuid.UUID, hold_id: uuid.UUID, status: str, now: datetime
) -> None:
    """Release (``released``) or expire (``expired``) an open hold: its money is free again."""
    hold = _resolve_hold(conn, tenant_id, hold_id, status, now)
    conn.execute(_CHANGE_HELD, (-hold.amount, hold.account_id))


def capture_hold(
    conn: sqlite3.Connection, payout: Payout, hold_id: uuid.UUID, now: datetime
) -> uuid.UUID:
    """Spend the hold in one journal transaction (``ledger.service.capture_hold``): the
    amount to payouts_clearing, the fee to fees. The transaction's id."""
    tenant = payout.tenant_id.hex
    hold = _resolve_hold(conn, payout.tenant_id, hold_id, "captured", now)
    destinations = lifecycle.capture_destinations(payout)
    if sum(amount for _, amount in destinations) != hold.amount:
        raise UnbalancedTransaction("a capture must spend exactly the held amount")
    legs = [(hold.account_id, -hold.amount)]
    for kind, amount in destinations:
        if kind not in SYSTEM_ACCOUNT_KINDS or amount <= 0:
            raise UnbalancedTransaction(f"cannot capture {amount} into {kind!r}")
        found = conn.execute(_SYSTEM_ACCOUNT, (tenant, hold.currency, kind)).fetchone()
        if found is None:
            raise LookupError(f"no {kind} account for tenant {tenant} in {hold.currency}")
        legs.append((found[0], amount))
    moved = conn.execute(_APPLY_WALLET_LEG, (-hold.amount, hold.amount, hold.account_id))
    after = moved.fetchone()
    if after is None:
        raise InsufficientFunds(
            f"the wallet's available balance is lower than {hold.amount} minor units"
        )
    transaction_id = new_id()
    seq = conn.execute(
        _INSERT_TRANSACTION,
        (
            transaction_id.hex,
            tenant,
            hold.wallet_id,
            hold.amount,
            hold.currency,
            after[0] + hold.amount,
            after[0],
            lifecycle.capture_description(payout),
            json.dumps(lifecycle.capture_metadata(payout)),
            hold_id.hex,
            stored_time(now),
        ),
    ).lastrowid
    conn.executemany(
        _INSERT_ENTRY, [(seq, account, hold.currency, amount) for account, amount in legs]
    )
    return transaction_id


def insert_event(
    conn: sqlite3.Connection, tenant_id: uuid.UUID, type_: str, data: dict[str, Any], now: datetime
) -> None:
    """``events.service.record``: the event commits or rolls back with the change."""
    conn.execute(
        _INSERT_EVENT, (new_id().hex, tenant_id.hex, type_, json.dumps(data), stored_time(now))
    )
