"""The crash test's client log, and the properties the database must show against it.

Every request the load sends belongs to an ``Op``: one logical operation (a deposit, an
immediate withdrawal, a payout's creation, one status change of a payout) with a fixed path,
body, ``Idempotency-Key`` and reference, and every attempt at it with what came back:
*acknowledged* (a 2xx with a body), *refused* (a 4xx with a problem ``code``), or *unknown* (no
answer: the connection broke, the client gave up waiting, a 5xx, or an answer that says only
"retry": ``idempotency_key_in_use``). A retry sends the same bytes with the same key.

:func:`check` holds a :class:`Snapshot` of the database against the log and returns every
violation it finds, so that one failing run shows all of them.
"""

from __future__ import annotations

import enum
import itertools
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select

from kassa.events.tables import events
from kassa.kit.db import Database
from kassa.ledger.tables import accounts, holds, journal_transactions
from kassa.payouts.tables import payouts
from kassa.wallets.tables import wallets


class Outcome(enum.Enum):
    ACKED = "acked"
    REFUSED = "refused"
    UNKNOWN = "unknown"


class Effect(enum.Enum):
    """What the log says an operation must have done to the ledger."""

    ONCE = "exactly once"
    NONE = "never"
    AT_MOST_ONCE = "at most once"


ALLOWED_COUNTS = {Effect.ONCE: {1}, Effect.NONE: {0}, Effect.AT_MOST_ONCE: {0, 1}}

# Answers that say nothing about whether the work was done, only "ask again".
TRANSIENT_CODES = frozenset({"idempotency_key_in_use", "service_unavailable"})

TRANSITIONS = {
    ("PREVIEW", "PENDING"),
    ("PREVIEW", "CANCELLED"),
    ("PENDING", "PROCESSING"),
    ("PENDING", "CANCELLED"),
    ("PROCESSING", "COMPLETED"),
    ("PROCESSING", "FAILED"),
}
HOLD_STATUS = {
    "PENDING": {"open"},
    "PROCESSING": {"open"},
    "COMPLETED": {"captured"},
    "FAILED": {"released"},
    "CANCELLED": {"released", "expired"},
}
MONEY_EVENTS = {"deposit": "wallet.credited", "withdrawal": "wallet.debited"}


@dataclass(frozen=True)
class Attempt:
    cycle: int
    outcome: Outcome
    status: int | None = None
    code: str | None = None
    body: str | None = None  # an acknowledgement's body, exactly as it came
    error: str | None = None
    resend: bool = False  # a deliberate repeat of a request already acknowledged

    def json(self) -> dict[str, Any]:
        assert self.body is not None
        parsed: dict[str, Any] = orjson.loads(self.body)
        return parsed

    def __str__(self) -> str:
        what = self.error or self.code or ""
        status = f" {self.status}" if self.status is not None else ""
        return f"{'resend ' if self.resend else ''}{self.outcome.value}{status} {what}@{self.cycle}"


@dataclass
class Op:
    number: int
    kind: str  # "deposit", "withdrawal", "payout" (its creation) or "status" (a payout's)
    path: str
    body: bytes
    key: str | None
    reference: str | None
    wallet_id: str
    amount: int
    payout_id: str | None = None  # for "status"
    target: str | None = None  # for "status"
    attempts: list[Attempt] = field(default_factory=list)
    retry: bool | None = None  # decided at its first unknown answer: retried or abandoned

    @property
    def acked(self) -> Attempt | None:
        return next((a for a in self.attempts if a.outcome is Outcome.ACKED), None)

    def effect(self) -> Effect:
        """Decided by the first definitive answer. A retry refused as a duplicate reference
        after unknown attempts proves that one of those attempts did the work. Any other
        refusal is final for a key (its answer is stored with the work, and an attempt still
        in flight replays it); without a key an earlier attempt that timed out may still be
        running on the server and commit later, so it proves only "at most once"."""
        for index, attempt in enumerate(self.attempts):
            if attempt.outcome is Outcome.ACKED:
                return Effect.ONCE
            if attempt.outcome is Outcome.REFUSED:
                if index == 0 or self.key is not None:
                    return Effect.NONE
                if attempt.code == "duplicate_reference":
                    return Effect.ONCE
                return Effect.AT_MOST_ONCE
        return Effect.AT_MOST_ONCE

    def __str__(self) -> str:
        name = self.reference or f"{self.payout_id}->{self.target}"
        tries = ", ".join(str(attempt) for attempt in self.attempts)
        return f"op #{self.number} {self.kind} {name} key={self.key} [{tries}]"


@dataclass
class Snapshot:
    """What the database holds for the tenant after the cycles."""

    wallet_ids: set[str]
    transactions: list[Any]
    payouts: list[Any]
    holds: list[Any]
    events: list[Any]  # in the order they were written
    accounts: list[Any]  # wallet accounts only


async def read_snapshot(database_url: str, tenant_id: uuid.UUID) -> Snapshot:
    db = Database(database_url)
    try:
        async with db.read() as conn:

            async def rows(statement: Any) -> list[Any]:
                return list((await conn.execute(statement)).all())

            wallet_rows = await rows(select(wallets.c.id).where(wallets.c.tenant_id == tenant_id))
            return Snapshot(
                wallet_ids={str(row.id) for row in wallet_rows},
                transactions=await rows(
                    select(journal_transactions).where(
                        journal_transactions.c.tenant_id == tenant_id
                    )
                ),
                payouts=await rows(select(payouts).where(payouts.c.tenant_id == tenant_id)),
                holds=await rows(select(holds).where(holds.c.tenant_id == tenant_id)),
                events=await rows(
                    select(events).where(events.c.tenant_id == tenant_id).order_by(events.c.seq)
                ),
                accounts=await rows(
                    select(accounts).where(
                        accounts.c.tenant_id == tenant_id, accounts.c.wallet_id.is_not(None)
                    )
                ),
            )
    finally:
        await db.close()


def check(ops: list[Op], snapshot: Snapshot) -> list[str]:
    """Every way the database disagrees with what the clients were told."""
    problems: list[str] = []
    for op in ops:
        problems += _answer_problems(op)
    problems += _reference_problems(ops, snapshot)
    problems += _payout_problems(ops, snapshot)
    problems += _balance_problems(ops, snapshot)
    problems += _event_problems(snapshot)
    return problems


def _answer_problems(op: Op) -> list[str]:
    """The answers one operation got must agree with each other."""
    problems = [
        f"{op}: answered {a.status}; a 5xx is always a bug"
        for a in op.attempts
        if a.status is not None and a.status >= 500
    ]
    definitive = [a for a in op.attempts if a.outcome is not Outcome.UNKNOWN]
    if not definitive:
        if op.retry:
            problems.append(f"{op}: retried with the same key/reference but never resolved")
        return problems
    first = definitive[0]
    if first.code == "duplicate_reference" and op.attempts[0] is first:
        problems.append(f"{op}: its unique reference was refused as a duplicate at once")
    for later in definitive[1:]:
        if op.key is not None:
            same = (later.status, later.body, later.code) == (first.status, first.body, first.code)
            if not same:
                problems.append(f"{op}: a retry with its key answered differently")
        elif first.outcome is Outcome.ACKED and later.code != "duplicate_reference":
            problems.append(f"{op}: a repeat of its reference was not refused as a duplicate")
    return problems


def _reference_problems(ops: list[Op], snapshot: Snapshot) -> list[str]:
    """Each deposit, withdrawal and payout by its reference: as often as its answers say."""
    problems: list[str] = []
    by_reference: dict[str, dict[str, list[Any]]] = {
        "transaction": defaultdict(list),
        "payout": defaultdict(list),
    }
    for row in snapshot.transactions:
        if row.reference is not None:
            by_reference["transaction"][row.reference].append(row)
        elif row.hold_id is None:
            problems.append(f"transaction {row.id} has neither a reference nor a hold")
    for row in snapshot.payouts:
        by_reference["payout"][row.reference].append(row)
    sent: set[str] = set()
    for op in ops:
        if op.kind == "status":
            continue
        assert op.reference is not None
        sent.add(op.reference)
        table, other = "transaction", "payout"
        if op.kind == "payout":
            table, other = other, table
        found = by_reference[table].get(op.reference, [])
        if by_reference[other].get(op.reference):
            problems.append(f"{op}: its reference is on a {other} too")
        effect = op.effect()
        if len(found) not in ALLOWED_COUNTS[effect]:
            problems.append(f"{op}: must be in the ledger {effect.value}, found {len(found)}")
        for row in found:
            recorded = getattr(row, "kind", "payout")  # a payout row has no kind
            if (recorded, str(row.wallet_id), row.amount) != (op.kind, op.wallet_id, op.amount):
                problems.append(f"{op}: recorded as {recorded} {row.amount} on {row.wallet_id}")
        acked = op.acked
        if acked is not None and len(found) == 1:
            answer = acked.json()
            if answer["id"] != str(found[0].id):
                problems.append(f"{op}: acknowledged as {answer['id']}, stored as {found[0].id}")
            if op.kind != "payout" and answer["balance_after"] != found[0].balance_after:
                problems.append(f"{op}: acknowledged balance_after {answer['balance_after']}")
    for table, found_by_reference in by_reference.items():
        for reference in found_by_reference.keys() - sent:
            problems.append(f"a {table} with reference {reference!r} that no client sent")
    return problems


def _payout_problems(ops: list[Op], snapshot: Snapshot) -> list[str]:
    """Every payout walked a legal path, its status changes match the answers, and each hold
    belongs to its payout and is in the state the payout's status requires."""
    problems: list[str] = []
    holds_by_id = {row.id: row for row in snapshot.holds}
    captures: dict[Any, list[Any]] = defaultdict(list)
    for row in snapshot.transactions:
        if row.hold_id is not None:
            captures[row.hold_id].append(row)
    histories: dict[str, list[str]] = {}
    owned: set[Any] = set()
    for payout in snapshot.payouts:
        statuses = [entry["status"] for entry in payout.history]
        histories[str(payout.id)] = statuses
        name = f"payout {payout.id} {statuses}"
        steps = set(itertools.pairwise(statuses))
        if statuses[0] != "PREVIEW" or not steps <= TRANSITIONS or payout.status != statuses[-1]:
            problems.append(f"{name}: not a legal path to {payout.status}")
        total = payout.amount + payout.fee_total
        hold = holds_by_id.get(payout.hold_id)
        if "PENDING" not in statuses:
            if payout.hold_id is not None:
                problems.append(f"{name}: a hold without ever being PENDING")
        elif hold is None:
            problems.append(f"{name}: no hold")
        else:
            owned.add(hold.id)
            wanted = (total, payout.wallet_id, f"payout:{payout.id}")
            if (hold.amount, hold.wallet_id, hold.reference) != wanted:
                problems.append(f"{name}: hold {hold.id} is not this payout's")
            if hold.status not in HOLD_STATUS[payout.status]:
                problems.append(f"{name}: its hold is {hold.status}")
        spent = captures.get(payout.hold_id, []) if payout.hold_id is not None else []
        if payout.status != "COMPLETED":
            if spent or payout.transaction_id is not None:
                problems.append(f"{name}: captured without being COMPLETED")
        elif [(c.id, c.amount, c.metadata.get("payout_id")) for c in spent] != [
            (payout.transaction_id, total, str(payout.id))
        ]:
            problems.append(f"{name}: captured by {[c.id for c in spent]}, not once")
    for hold in snapshot.holds:
        if hold.id not in owned:
            problems.append(f"hold {hold.id} ({hold.status}) without its payout")
    for hold_id in captures.keys() - owned:
        problems.append(f"capture of hold {hold_id}, which no payout owns")
    for op in ops:
        if op.kind != "status":
            continue
        assert op.payout_id is not None
        assert op.target is not None
        statuses = histories.get(op.payout_id, [])
        effect = op.effect()
        if statuses.count(op.target) not in ALLOWED_COUNTS[effect]:
            problems.append(f"{op}: must be in the history {effect.value}: {statuses}")
        acked = op.acked
        if acked is not None and acked.json()["status"] != op.target:
            problems.append(f"{op}: acknowledged as {acked.json()['status']}")
    return problems


def _balance_problems(ops: list[Op], snapshot: Snapshot) -> list[str]:
    """No negative balance, and each wallet's cached balance and held amount equal what the
    clients' acknowledged (and found) operations add up to."""
    problems: list[str] = []
    present = {row.reference for row in snapshot.transactions if row.reference is not None}
    balance: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for op in ops:
        if op.kind in MONEY_EVENTS and op.reference in present:
            balance[op.wallet_id] += op.amount if op.kind == "deposit" else -op.amount
    for payout in snapshot.payouts:
        total = payout.amount + payout.fee_total
        if payout.status == "COMPLETED":
            balance[str(payout.wallet_id)] -= total
        elif payout.status in ("PENDING", "PROCESSING"):
            held[str(payout.wallet_id)] += total
    for account in snapshot.accounts:
        wallet = str(account.wallet_id)
        if account.balance < 0 or not 0 <= account.held <= account.balance:
            problems.append(f"wallet {wallet} {account.kind}: {account.balance}/{account.held}")
        if account.kind != "cash":
            continue
        if (account.balance, account.held) != (balance[wallet], held[wallet]):
            problems.append(
                f"wallet {wallet}: balance {account.balance} held {account.held}, the clients'"
                f" operations add up to {balance[wallet]} held {held[wallet]}"
            )
    return problems


def _event_problems(snapshot: Snapshot) -> list[str]:
    """Every committed change has exactly one event, in order, and no event lacks its change."""
    expected: Counter[tuple[str, str]] = Counter()
    order: dict[str, list[str]] = {}
    for wallet_id in snapshot.wallet_ids:
        expected["wallet.created", wallet_id] += 1
    for row in snapshot.transactions:
        if row.hold_id is None:
            expected[MONEY_EVENTS[row.kind], str(row.id)] += 1
    completed = {}
    for payout in snapshot.payouts:
        statuses = [entry["status"] for entry in payout.history]
        types = ["payout.created"] + [f"payout.{status.lower()}" for status in statuses[1:]]
        order[str(payout.id)] = types
        expected.update((kind, str(payout.id)) for kind in types)
        if payout.transaction_id is not None:
            completed[str(payout.id)] = str(payout.transaction_id)
    actual: Counter[tuple[str, str]] = Counter()
    seen: dict[str, list[str]] = defaultdict(list)
    problems: list[str] = []
    for event in snapshot.events:
        subject = event.data["id"]
        actual[event.type, subject] += 1
        if event.type.startswith("payout."):
            seen[subject].append(event.type)
        if event.type == "payout.completed" and event.data["transaction_id"] != completed.get(
            subject
        ):
            problems.append(f"event {event.id}: payout.completed names another transaction")
    for change in sorted(expected.keys() | actual.keys()):
        if expected[change] != actual[change]:
            problems.append(f"{change}: {actual[change]} events, expected {expected[change]}")
    for payout_id, types in order.items():
        if seen[payout_id] != types:
            problems.append(f"payout {payout_id}: events {seen[payout_id]}, expected {types}")
    return problems


def summary(ops: list[Op]) -> str:
    """One line of counts, to see that a run exercised what it should."""
    attempts = [a for op in ops for a in op.attempts]
    effects = Counter(op.effect().value for op in ops)
    kinds = Counter(op.kind for op in ops)
    resolved = sum(1 for op in ops if op.retry and op.effect() is not Effect.AT_MOST_ONCE)
    return (
        f"{len(ops)} ops {dict(kinds)}; {len(attempts)} attempts, "
        f"{sum(a.outcome is Outcome.UNKNOWN for a in attempts)} unknown, "
        f"{sum(a.resend for a in attempts)} resends; effects {dict(effects)}; "
        f"{resolved} unknown ops resolved by a retry, "
        f"{sum(op.retry is False for op in ops)} abandoned"
    )
