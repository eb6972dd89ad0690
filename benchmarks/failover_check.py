"""The failover drill's proof, read from the final leader: every acknowledged operation is in
the ledger exactly once, none is there twice, nothing a client did not send is there, every
payout walked a legal path with its hold in step, each wallet's balance is what the clients'
operations add up to, and every acknowledged request sent again with its key answers the same
bytes."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import asyncpg
import httpx
import orjson

from failover_load import Op

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


@dataclasses.dataclass
class Verdict:
    lost: list[str] = dataclasses.field(default_factory=list)  # acknowledged, not there
    doubled: list[str] = dataclasses.field(default_factory=list)  # there more than once
    problems: list[str] = dataclasses.field(default_factory=list)  # anything else wrong
    replayed: int = 0  # acknowledged requests sent again with their key, answered the same

    @property
    def clean(self) -> bool:
        return not (self.lost or self.doubled or self.problems)


async def read_ledger(dsn: str, tenant_id: str) -> dict[str, list[asyncpg.Record]]:
    connection = await asyncpg.connect(dsn)
    try:
        tenant = uuid.UUID(tenant_id)
        return {
            "transactions": await connection.fetch(
                "SELECT id, reference, kind, amount, wallet_id, balance_after, hold_id"
                " FROM journal_transactions WHERE tenant_id = $1",
                tenant,
            ),
            "payouts": await connection.fetch(
                "SELECT id, reference, status, history, amount, fee_total, hold_id,"
                " transaction_id, wallet_id FROM payouts WHERE tenant_id = $1",
                tenant,
            ),
            "holds": await connection.fetch(
                "SELECT id, status, amount, wallet_id FROM holds WHERE tenant_id = $1", tenant
            ),
            "accounts": await connection.fetch(
                "SELECT wallet_id, kind, balance, held FROM accounts"
                " WHERE tenant_id = $1 AND wallet_id IS NOT NULL",
                tenant,
            ),
        }
    finally:
        await connection.close()


def check(ops: Sequence[Op], ledger: dict[str, list[asyncpg.Record]], opening: int) -> Verdict:
    verdict = Verdict()
    transactions: dict[str, list[Any]] = defaultdict(list)
    for row in ledger["transactions"]:
        if row["kind"] != "deposit" and row["reference"] is not None:
            transactions[row["reference"]].append(row)
    payouts: dict[str, list[Any]] = defaultdict(list)
    for row in ledger["payouts"]:
        payouts[row["reference"]].append(row)
    histories = {str(row["id"]): _statuses(row) for row in ledger["payouts"]}
    sent: set[str] = set()
    for op in ops:
        if op.kind == "status":
            assert op.payout_id is not None
            assert op.target is not None
            _count(verdict, op, histories.get(op.payout_id, []).count(op.target))
            continue
        assert op.reference is not None
        sent.add(op.reference)
        found = (transactions if op.kind == "withdrawal" else payouts).get(op.reference, [])
        _count(verdict, op, len(found))
        for row in found:
            if (str(row["wallet_id"]), row["amount"]) != (op.wallet_id, op.amount):
                verdict.problems.append(f"{op}: recorded as {row['amount']} on {row['wallet_id']}")
        acked = op.acked
        if acked is not None and len(found) == 1:
            answer = orjson.loads(acked.body or b"{}")
            if answer.get("id") != str(found[0]["id"]):
                verdict.problems.append(f"{op}: acknowledged as {answer.get('id')}")
    for reference in (transactions.keys() | payouts.keys()) - sent:
        verdict.problems.append(f"reference {reference!r} in the ledger, sent by no client")
    _check_payouts(verdict, ledger)
    _check_balances(verdict, ledger, opening)
    return verdict


def _statuses(row: Any) -> list[str]:
    history = row["history"]
    entries = orjson.loads(history) if isinstance(history, str) else history
    return [entry["status"] for entry in entries]


def _count(verdict: Verdict, op: Op, found: int) -> None:
    if found > 1:
        verdict.doubled.append(f"{op}: {found} times in the ledger")
    elif op.outcome == "acked" and found == 0:
        verdict.lost.append(f"{op}: acknowledged, not in the ledger")
    elif op.outcome == "refused" and found:
        verdict.problems.append(f"{op}: refused, yet in the ledger")


def _check_payouts(verdict: Verdict, ledger: dict[str, list[asyncpg.Record]]) -> None:
    holds = {row["id"]: row for row in ledger["holds"]}
    captures: Counter[Any] = Counter(
        row["hold_id"] for row in ledger["transactions"] if row["hold_id"] is not None
    )
    for payout in ledger["payouts"]:
        statuses = _statuses(payout)
        name = f"payout {payout['id']} {statuses}"
        steps = set(itertools.pairwise(statuses))
        if statuses[0] != "PREVIEW" or not steps <= TRANSITIONS or payout["status"] != statuses[-1]:
            verdict.problems.append(f"{name}: not a legal path")
        if len(statuses) != len(set(statuses)):
            verdict.doubled.append(f"{name}: a status twice")
        if payout["hold_id"] is None:
            if "PENDING" in statuses:
                verdict.problems.append(f"{name}: no hold")
            continue
        hold = holds.get(payout["hold_id"])
        total = payout["amount"] + payout["fee_total"]
        if hold is None or hold["amount"] != total or hold["wallet_id"] != payout["wallet_id"]:
            verdict.problems.append(f"{name}: its hold is missing or not its own")
        elif hold["status"] not in HOLD_STATUS[payout["status"]]:
            verdict.problems.append(f"{name}: its hold is {hold['status']}")
        captured = captures[payout["hold_id"]]
        if captured > 1:
            verdict.doubled.append(f"{name}: captured {captured} times")
        elif captured != (payout["status"] == "COMPLETED"):
            verdict.problems.append(f"{name}: captured {captured} times")


def _check_balances(
    verdict: Verdict, ledger: dict[str, list[asyncpg.Record]], opening: int
) -> None:
    balance: Counter[str] = Counter()
    held: Counter[str] = Counter()
    for row in ledger["transactions"]:
        if row["kind"] == "withdrawal" and row["hold_id"] is None:  # a capture is its payout's
            balance[str(row["wallet_id"])] -= row["amount"]
    for payout in ledger["payouts"]:
        total = payout["amount"] + payout["fee_total"]
        if payout["status"] == "COMPLETED":
            balance[str(payout["wallet_id"])] -= total
        elif payout["status"] in ("PENDING", "PROCESSING"):
            held[str(payout["wallet_id"])] += total
    for account in ledger["accounts"]:
        if account["kind"] != "cash":
            continue
        wallet = str(account["wallet_id"])
        expected = (opening + balance[wallet], held[wallet])
        if (account["balance"], account["held"]) != expected:
            verdict.problems.append(
                f"wallet {wallet}: balance/held {account['balance']}/{account['held']},"
                f" its operations add up to {expected[0]}/{expected[1]}"
            )


async def check_replays(verdict: Verdict, ops: Sequence[Op], server: str, token: str) -> None:
    """Every acknowledged request, sent again with its key and bytes, answers the same."""
    acked = [op for op in ops if op.acked is not None]
    gate = asyncio.Semaphore(8)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=30) as http:

        async def again(op: Op) -> None:
            first = op.acked
            assert first is not None
            async with gate:
                response = await http.post(
                    op.path, content=op.body, headers={"Idempotency-Key": op.key}
                )
            if (response.status_code, response.content) != (first.status, first.body):
                verdict.problems.append(
                    f"{op}: sent again with its key, answered {response.status_code}"
                    f" {response.content[:200]!r}"
                )
            else:
                verdict.replayed += 1

        await asyncio.gather(*(again(op) for op in acked))
