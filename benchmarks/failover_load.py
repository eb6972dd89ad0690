"""The failover drill's clients: concurrent withdrawals and payouts, every request with an
Idempotency-Key, every attempt and its answer kept, every acknowledgement logged.

Each client owns a connection pool of its own and sends its operations one after another:
immediate withdrawals, and payouts walked PREVIEW -> PENDING -> PROCESSING on the sandbox rail
(the worker records the rail's COMPLETED or FAILED). An answer is *acknowledged* (2xx),
*refused* (4xx with a problem ``code`` that is not "ask again"), or *unknown* (no answer, a 5xx,
or ``409 idempotency_key_in_use``): an unknown operation is sent again, the same bytes with the
same key, to the other API process (as a load balancer would), until it is acknowledged or
refused. A refusal or acknowledgement after unknown attempts is as good as a first one: the key
replays the stored answer, or the work had not been done.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import httpx
import orjson

# Answers that say nothing about whether the work was done, only "ask again".
TRANSIENT_CODES = frozenset({"service_unavailable", "idempotency_key_in_use"})
SANDBOX_OPTION: dict[str, Any] = {
    "code": "RAPID_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT"],
    "currencies": ["EUR"],
    "min_amount": 1,
    "max_amount": 10**9,
    "fee": {"fixed": 25, "bps": 50},
    "connector": "sandbox",
}
PAYOUT_SHARE = 0.25  # of operations started: a payout's walk rather than a withdrawal
RETRY_PAUSE_MAX = 0.25  # a retry waits Retry-After, but no longer than this (finer outages)
REQUEST_TIMEOUT = 15.0


@dataclasses.dataclass(frozen=True)
class Wallet:
    id: str
    instrument_id: str


@dataclasses.dataclass(frozen=True)
class Attempt:
    server: str
    sent_at: float  # time.monotonic()
    received_at: float
    status: int | None  # None: no HTTP answer
    code: str | None = None  # a problem's code
    body: bytes | None = None
    retry_after: str | None = None
    error: str | None = None  # the transport error, if no answer

    @property
    def outcome(self) -> str:
        if self.status is not None and 200 <= self.status < 300:
            return "acked"
        if self.status is not None and 400 <= self.status < 500:
            return "unknown" if self.code in TRANSIENT_CODES else "refused"
        return "unknown"

    @property
    def bug(self) -> bool:
        """A 5xx that is not a retryable 503 with Retry-After (a 500 is always a bug)."""
        if self.status is None or self.status < 500:
            return False
        return not (self.status == 503 and self.retry_after is not None)


@dataclasses.dataclass
class Op:
    number: int
    kind: str  # "withdrawal", "payout" (its creation) or "status" (a payout's status change)
    path: str
    body: bytes
    key: str
    wallet_id: str
    amount: int
    reference: str | None = None
    payout_id: str | None = None  # for "status"
    target: str | None = None  # for "status"
    attempts: list[Attempt] = dataclasses.field(default_factory=list)

    @property
    def acked(self) -> Attempt | None:
        return next((a for a in self.attempts if a.outcome == "acked"), None)

    @property
    def outcome(self) -> str:
        """acked, refused, or unknown (never answered for sure, after every retry)."""
        for attempt in self.attempts:
            if attempt.outcome != "unknown":
                return attempt.outcome
        return "unknown"

    def __str__(self) -> str:
        name = self.reference or f"{self.payout_id}->{self.target}"
        tries = ", ".join(f"{a.status or a.error} {a.code or ''}".strip() for a in self.attempts)
        return f"op #{self.number} {self.kind} {name} key={self.key} [{tries}]"


class Load:
    """Clients driving the API until :meth:`stop`; see the module's text."""

    def __init__(
        self,
        servers: Sequence[str],
        token: str,
        wallets: Sequence[Wallet],
        clients: int,
        ack_log: Path,
        seed: int,
    ) -> None:
        self.servers = list(servers)
        self.token = token
        self.wallets = list(wallets)
        self.clients = clients
        self.random = random.Random(seed)
        self.run_id = f"{seed:x}"
        self.ops: list[Op] = []
        self.acks: list[tuple[float, Op]] = []  # (when it was answered, the op), in order
        self._numbers = itertools.count(1)
        self._stopping = asyncio.Event()
        self._ack_log_path = ack_log
        self._ack_log: IO[bytes] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.give_up_at = float("inf")
        self.recovered_at = 0.0  # when the last failover's first 2xx came (set by the drill)

    # --- running ------------------------------------------------------------------------------

    def start(self) -> None:
        self._ack_log = self._ack_log_path.open("ab")
        self._tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]

    async def stop(self, settle_seconds: float) -> None:
        """Start no new operation; let each client finish its current one, retrying for up to
        ``settle_seconds`` more, then leave it unknown."""
        self.give_up_at = time.monotonic() + settle_seconds
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        if self._ack_log is not None:
            self._ack_log.close()

    async def cancel(self) -> None:
        """Stop every client at once (after :meth:`stop`, or when the run failed)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._ack_log is not None:
            self._ack_log.close()

    async def _client(self, number: int) -> None:
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        async with httpx.AsyncClient(headers=headers, limits=limits, timeout=REQUEST_TIMEOUT) as h:
            turn = number
            while not self._stopping.is_set():
                wallet = self.random.choice(self.wallets)
                if self.random.random() < PAYOUT_SHARE:
                    await self._walk_payout(h, wallet, turn)
                else:
                    amount = self.random.randint(1, 1000)
                    body = {"amount": amount, "reference": self._reference("w")}
                    path = f"/v1/wallets/{wallet.id}/withdrawals"
                    await self._perform(h, self._op("withdrawal", path, body, wallet, amount), turn)
                turn += 1

    async def _walk_payout(self, http: httpx.AsyncClient, wallet: Wallet, turn: int) -> None:
        # The sandbox fails amounts ending in 13 (released) and keeps those ending in 99 until
        # looked up after 10 minutes: none of the latter.
        amount = self.random.randint(1, 99) * 100 + self.random.choice([1, 13, 42, 50, 77])
        body = {
            "wallet_id": wallet.id,
            "amount": amount,
            "payment_option": SANDBOX_OPTION["code"],
            "instrument_id": wallet.instrument_id,
            "reference": self._reference("p"),
        }
        created = await self._perform(
            http, self._op("payout", "/v1/payouts", body, wallet, amount), turn
        )
        if created is None:
            return
        payout_id = str(orjson.loads(created)["id"])
        for target in ("PENDING", "PROCESSING"):
            op = self._op(
                "status", f"/v1/payouts/{payout_id}/status", {"status": target}, wallet, amount
            )
            op.payout_id, op.target = payout_id, target
            if await self._perform(http, op, turn) is None:
                return

    def _reference(self, prefix: str) -> str:
        return f"drill-{self.run_id}-{prefix}{next(self._numbers)}"

    def _op(self, kind: str, path: str, body: dict[str, Any], wallet: Wallet, amount: int) -> Op:
        number = next(self._numbers)
        op = Op(
            number,
            kind,
            path,
            orjson.dumps(body),
            f"drill-{self.run_id}-k{number}",
            wallet.id,
            amount,
            reference=body.get("reference"),
        )
        self.ops.append(op)
        return op

    async def _perform(self, http: httpx.AsyncClient, op: Op, turn: int) -> bytes | None:
        """Send ``op`` until it is acknowledged (its body) or refused (None), or given up."""
        for attempt_number in itertools.count():
            server = self.servers[(turn + attempt_number) % len(self.servers)]
            attempt = await self._send(http, server, op)
            op.attempts.append(attempt)
            if attempt.outcome == "acked":
                self._acknowledged(op, attempt)
                return attempt.body
            if attempt.outcome == "refused" or time.monotonic() > self.give_up_at:
                return None
            pause = RETRY_PAUSE_MAX
            if attempt.retry_after is not None and attempt.retry_after.isdigit():
                pause = min(float(attempt.retry_after), RETRY_PAUSE_MAX)
            await asyncio.sleep(pause)  # a retry policy's back-off, not synchronisation
        raise AssertionError("unreachable")

    async def _send(self, http: httpx.AsyncClient, server: str, op: Op) -> Attempt:
        sent_at = time.monotonic()
        try:
            response = await http.post(
                server + op.path, content=op.body, headers={"Idempotency-Key": op.key}
            )
        except httpx.HTTPError as error:
            return Attempt(server, sent_at, time.monotonic(), None, error=type(error).__name__)
        code = None
        if response.headers.get("content-type", "").startswith("application/problem+json"):
            code = orjson.loads(response.content).get("code")
        return Attempt(
            server,
            sent_at,
            time.monotonic(),
            response.status_code,
            code,
            response.content,
            response.headers.get("retry-after"),
        )

    def _acknowledged(self, op: Op, attempt: Attempt) -> None:
        self.acks.append((attempt.received_at, op))
        if self._ack_log is not None:
            line = {
                "op": op.number,
                "kind": op.kind,
                "path": op.path,
                "key": op.key,
                "reference": op.reference,
                "target": op.target,
                "status": attempt.status,
                "attempts": len(op.attempts),
                "answer": orjson.loads(attempt.body or b"null"),
            }
            self._ack_log.write(orjson.dumps(line) + b"\n")
            self._ack_log.flush()

    # --- what happened ------------------------------------------------------------------------

    def first_recovery(self, since: float) -> float | None:
        """When the first 2xx came to a request sent at or after ``since``."""
        found = [
            a.received_at
            for op in self.ops
            for a in op.attempts
            if a.outcome == "acked" and a.sent_at >= since
        ]
        return min(found) if found else None

    def acked_between(self, start: float, end: float) -> int:
        return sum(1 for at, _ in self.acks if start <= at < end)

    def attempts(self) -> list[Attempt]:
        return [a for op in self.ops for a in op.attempts]
