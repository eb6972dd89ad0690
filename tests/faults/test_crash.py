"""Crash test: the real server SIGKILLed, process group and all, at random moments under load.

Six clients deposit, withdraw, and walk payouts through PREVIEW -> PENDING -> PROCESSING ->
COMPLETED (or FAILED, or CANCELLED) with the manual connector, some with an Idempotency-Key,
all with unique references, and log every answer (``tests.faults.history``). A controller kills
the whole ``kassa serve --workers 2`` process group (supervisor and workers) at a seeded random
moment of the load, starts it again on the same database, and repeats. An operation that got no
answer is retried after the restart with the same key and bytes (or the same reference), or
abandoned on purpose. After the last restart the database must agree with the log: every
acknowledged operation is there exactly once, an abandoned one at most once, no wallet is
negative, every hold belongs to its payout, every committed change has exactly one event, and
``kassa verify`` is clean (the whole list: docs/testing.md, "Crash test").

Settings come from the environment: ``KASSA_CRASH_CYCLES`` (kills per backend, default 5) and
``KASSA_CRASH_SEED`` (the seed of every random choice; printed, and named in a failure). The
seed fixes the clients' choices and the kill moments, not how the processes interleave, so a
failure comes back from its seed often, not always: loop it (docs/testing.md).

Mutations it caught, each made in a copy of ``src`` run with ``PYTHONPATH`` (which the server
inherits) and seed 7, never in this tree:

* acknowledging without posting: ``kassa.wallets.endpoints.post_money`` answering 201 with a
  made-up transaction for one deposit or withdrawal in 50. Caught on both backends: "must be in
  the ledger exactly once, found 0" (4 each), and on SQLite "a retry with its key answered
  differently" (a resend got a made-up answer instead of the stored one).
* double-posting: ``post_money`` posting one withdrawal in 20 a second time (without its
  reference). Caught on both backends: "transaction ... has neither a reference nor a hold" and
  every wallet's balance below what the clients' operations add up to.
* acknowledging before commit: ``Database.write`` letting the answer go and committing 0.15 s
  later. An answer is wrong only if the process dies before its commit lands: only a kill shows it.
  Caught on SQLite (all writes): acknowledged deposits, withdrawals and status changes missing;
  and, limited to payout status changes (PostgreSQL's hot path does not use ``write``), on both
  backends: "must be in the history exactly once: ['PREVIEW']" for acknowledged changes (3 on
  SQLite, 9 on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from kassa.kit.db import Database
from tests.faults.history import (
    TRANSIENT_CODES,
    Attempt,
    Effect,
    Op,
    Outcome,
    check,
    read_snapshot,
)
from tests.faults.history import summary as summarise
from tests.helpers import TenantKey, create_wallet, free_port, kassa_env, make_tenant, run_cli
from tests.payouts.conftest import BANK_TRANSFER, add_instrument, set_options

CYCLES = int(os.environ.get("KASSA_CRASH_CYCLES", "5"))
SEED = os.environ.get("KASSA_CRASH_SEED") or str(random.SystemRandom().randrange(10**9))
CLIENTS = 6
WALLETS = 4
OPENING_BALANCE = 20_000
ABANDON = 0.2  # share of operations left unknown on purpose instead of retried
RESEND = 0.05  # share of acknowledged operations sent once more, as a lost answer would be
SHORT_TIMEOUT = 0.03  # share of attempts given up after a few milliseconds
RETRY_PAUSE = 0.02  # back-off before a retry; a retry policy, not synchronisation
LOAD_BOUND = 30.0  # seconds a cycle's load may take to reach its kill moment, at most
GIVE_UP_AFTER = 30.0  # seconds of retrying a live server before leaving an operation unknown
# Each plan is the statuses a payout is moved through after its PREVIEW, and its weight.
PLANS = [
    (("PENDING", "PROCESSING", "COMPLETED"), 60),
    (("PENDING", "PROCESSING", "FAILED"), 12),
    (("PENDING", "CANCELLED"), 10),
    (("CANCELLED",), 6),
    (("PENDING",), 6),
    (("PENDING", "PROCESSING"), 6),
]


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path


def start_server(database_url: str, folder: Path, cycle: int) -> Running:
    """``kassa serve --workers 2`` as the leader of a process group of its own."""
    port = free_port()
    log_path = folder / f"server-{cycle}.log"
    metrics_dir = folder / f"metrics-{cycle}"  # left behind by a kill: a fresh one per start
    metrics_dir.mkdir()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "kassa", "serve", "--port", str(port), "--workers", "2"],
            cwd=folder,
            env=kassa_env(database_url, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Running(process, f"http://127.0.0.1:{port}", log_path)


async def wait_ready(server: Running) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"kassa serve exited:\n{server.log_path.read_text()}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{server.url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.05)  # polling another process's start-up
    raise RuntimeError(f"kassa serve did not become ready:\n{server.log_path.read_text()}")


def group_members(pgid: int) -> list[int]:
    """Live (not zombie) processes in a process group, from /proc."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            # The command name may hold spaces; the fields after its ")" do not.
            fields = stat.read_text().rpartition(")")[2].split()
            if fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(stat.parent.name))
    return members


async def kill_group(server: Running) -> int:
    """SIGKILL the server's whole process group and wait until none of it runs; how many
    processes it killed."""
    members = len(group_members(server.process.pid))
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGKILL)
    try:
        await asyncio.to_thread(server.process.wait, 60)
    except subprocess.TimeoutExpired:
        raise AssertionError(
            f"kassa serve {server.process.pid} outlived SIGKILL by 60 s: "
            f"{process_state(server.process.pid)}"
        ) from None
    left = await asyncio.to_thread(wait_group_gone, server.process.pid)
    assert not left, f"processes {left} of the server survived SIGKILL"
    return members


def process_state(pid: int) -> str:
    """What the kernel says a process is doing, for a failure message."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as error:
        return str(error)
    return f"{[line for line in status if line.startswith('State')]} wchan={wchan}"


def wait_group_gone(pgid: int) -> list[int]:
    """The group's live processes once none is left, or after 10 s."""
    deadline = time.monotonic() + 10
    while (left := group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.01)  # the kernel tearing the workers down
    return left


@contextlib.contextmanager
def reaped(servers: list[Running], tasks: list[asyncio.Task[None]]) -> Iterator[None]:
    """Whatever happens, no server or client of the test outlives it."""
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for server in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.process.wait(timeout=30)


@dataclass
class Wallet:
    id: str
    instrument_id: str


@dataclass
class Target:
    """The server the clients talk to now; ``up`` is clear while it is down. ``progressed`` is
    set once the server has answered ``wanted`` requests since it started."""

    url: str = ""
    cycle: int = 0
    up: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    answers: int = 0
    wanted: int = 0
    progressed: asyncio.Event = field(default_factory=asyncio.Event)

    def serve(self, url: str, cycle: int, wanted: int) -> None:
        self.url, self.cycle, self.answers, self.wanted = url, cycle, 0, wanted
        self.progressed.clear()
        self.up.set()

    def answered(self, cycle: int) -> None:
        if cycle == self.cycle:
            self.answers += 1
            if self.answers >= self.wanted:
                self.progressed.set()


class Client:
    """One client of the load: its own connection pool, random choices and log entries."""

    def __init__(self, name: str, tenant: TenantKey, target: Target, ops: list[Op]) -> None:
        self.name = name
        self.rng = random.Random(f"{SEED}:{name}")
        self.target = target
        self.ops = ops
        self.tenant = tenant
        self.numbers = itertools.count()
        self.http = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {tenant.key}", "Content-Type": "application/json"},
            timeout=15,
        )

    def op(self, kind: str, path: str, body: dict[str, Any], keyed: bool, **extra: Any) -> Op:
        number = len(self.ops)
        key = f"{self.name}-{next(self.numbers)}" if keyed else None
        op = Op(number, kind, path, orjson.dumps(body), key, body.get("reference"), **extra)
        self.ops.append(op)
        return op

    async def attempt(self, op: Op, resend: bool = False) -> Attempt:
        headers = {"Idempotency-Key": op.key} if op.key is not None else {}
        timeout = 15.0
        if self.rng.random() < SHORT_TIMEOUT:
            timeout = self.rng.uniform(0.001, 0.03)
        cycle = self.target.cycle
        try:
            response = await self.http.post(
                self.target.url + op.path, content=op.body, headers=headers, timeout=timeout
            )
        except httpx.TransportError as error:
            return Attempt(cycle, Outcome.UNKNOWN, error=type(error).__name__, resend=resend)
        self.target.answered(cycle)
        status = response.status_code
        if 200 <= status < 300:
            return Attempt(cycle, Outcome.ACKED, status, body=response.text, resend=resend)
        code = _problem_code(response)
        if status >= 500 or code in TRANSIENT_CODES:
            return Attempt(cycle, Outcome.UNKNOWN, status, code, resend=resend)
        return Attempt(cycle, Outcome.REFUSED, status, code, resend=resend)

    async def settle(self, op: Op, may_abandon: bool = True) -> Attempt:
        """Send ``op`` until it has a definitive answer, or until it is abandoned."""
        trying = 0.0
        while True:
            await self.target.up.wait()
            began = time.monotonic()
            answer = await self.attempt(op)
            op.attempts.append(answer)
            if answer.outcome is Outcome.ACKED and self.rng.random() < RESEND:
                op.attempts.append(await self.attempt(op, resend=True))
            if answer.outcome is not Outcome.UNKNOWN:
                return answer
            if op.retry is None:
                op.retry = not may_abandon or self.rng.random() >= ABANDON
            if self.target.up.is_set():
                trying += time.monotonic() - began + RETRY_PAUSE
            if not op.retry or trying > GIVE_UP_AFTER:
                return answer
            await asyncio.sleep(RETRY_PAUSE)

    async def run(self, wallets: list[Wallet]) -> None:
        try:
            while not self.target.stop.is_set():
                await self.target.up.wait()
                wallet = self.rng.choice(wallets)
                roll = self.rng.random()
                if roll < 0.35:
                    await self.move_money("deposit", wallet, self.rng.randint(100, 5_000))
                elif roll < 0.7:
                    await self.move_money("withdrawal", wallet, self.rng.randint(100, 6_000))
                else:
                    await self.payout(wallet)
        finally:
            await self.http.aclose()

    async def move_money(
        self, kind: str, wallet: Wallet, amount: int, may_abandon: bool = True
    ) -> Op:
        body = {"amount": amount, "reference": f"{kind}-{self.name}-{next(self.numbers)}"}
        keyed = self.rng.random() < 0.5
        path = f"/v1/wallets/{wallet.id}/{kind}s"
        op = self.op(kind, path, body, keyed, wallet_id=wallet.id, amount=amount)
        await self.settle(op, may_abandon)
        return op

    async def payout(self, wallet: Wallet) -> None:
        amount = self.rng.randint(100, 4_000)
        body = {
            "wallet_id": wallet.id,
            "amount": amount,
            "payment_option": "BANK_TRANSFER",
            "instrument_id": wallet.instrument_id,
            "reference": f"payout-{self.name}-{next(self.numbers)}",
        }
        # Always keyed: a retry must learn the payout's id, which only a replay tells.
        created = await self.settle(
            self.op("payout", "/v1/payouts", body, True, wallet_id=wallet.id, amount=amount)
        )
        if created.outcome is not Outcome.ACKED:
            return
        payout_id = created.json()["id"]
        plans, weights = zip(*PLANS, strict=True)
        for target in self.rng.choices(plans, weights)[0]:
            change: dict[str, Any] = {"status": target}
            if target == "FAILED":
                change["reason"] = "REJECTED_BY_BANK"
            path = f"/v1/payouts/{payout_id}/status"
            op = self.op("status", path, change, True, wallet_id=wallet.id, amount=amount,
                         payout_id=payout_id, target=target)  # fmt: skip
            if (await self.settle(op)).outcome is not Outcome.ACKED:
                return


def _problem_code(response: httpx.Response) -> str | None:
    try:
        problem = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None
    code = problem.get("code") if isinstance(problem, dict) else None
    return code if isinstance(code, str) else None


async def open_wallets(client: Client, count: int) -> list[Wallet]:
    """The tenant's payment option and funded wallets with verified instruments; done on the
    first server before any kill, so every answer must be an acknowledgement."""
    async with httpx.AsyncClient(
        base_url=client.target.url, headers={"Authorization": f"Bearer {client.tenant.key}"}
    ) as api:
        await set_options(api, BANK_TRANSFER)
        wallets = []
        for index in range(count):
            created = await create_wallet(api, "EUR", f"crash-{index}")
            instrument = await add_instrument(api, created["customer_id"])
            wallets.append(Wallet(created["id"], instrument["id"]))
    for wallet in wallets:
        funded = await client.move_money("deposit", wallet, OPENING_BALANCE, may_abandon=False)
        assert funded.effect() is Effect.ONCE, funded
    return wallets


async def test_acknowledged_work_survives_sigkill(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    """Kill the server CYCLES times under load; the books must match every answer given."""
    began = time.monotonic()
    print(f"crash test on {backend}: KASSA_CRASH_SEED={SEED} KASSA_CRASH_CYCLES={CYCLES}")
    db = Database(fresh_database_url)
    try:
        tenant = await make_tenant(db)
    finally:
        await db.close()
    kills = random.Random(f"{SEED}:{backend}:kills")
    target, ops = Target(), list[Op]()
    clients = [Client(f"{backend}-c{n}", tenant, target, ops) for n in range(CLIENTS)]
    servers: list[Running] = []
    tasks: list[asyncio.Task[None]] = []
    startups: list[float] = []
    killed: list[int] = []
    with reaped(servers, tasks):
        for cycle in range(CYCLES + 1):
            server = start_server(fresh_database_url, tmp_path, cycle)
            servers.append(server)
            starting = time.monotonic()
            await wait_ready(server)
            startups.append(time.monotonic() - starting)
            # The fault's moment: after a random number of answers (sometimes only a few, so
            # that it lands among the previous cycle's retries) and then a random delay.
            early = kills.random() < 0.2
            wanted = kills.randint(1, 10) if early else kills.randint(30, 300)
            target.serve(server.url, cycle, wanted)
            if cycle == 0:
                wallets = await open_wallets(clients[0], WALLETS)
                tasks += [asyncio.create_task(client.run(wallets)) for client in clients]
            if cycle == CYCLES:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(target.progressed.wait(), timeout=LOAD_BOUND)
            await asyncio.sleep(kills.uniform(0, 0.3))
            target.up.clear()
            killed.append(await kill_group(server))
        target.stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=120)
        os.killpg(server.process.pid, signal.SIGTERM)
        await asyncio.to_thread(server.process.wait, 30)

    snapshot = await read_snapshot(fresh_database_url, tenant.tenant_id)
    verified = await asyncio.to_thread(
        run_cli, fresh_database_url, "verify", "--tenant", str(tenant.tenant_id)
    )
    print(
        f"{summarise(ops)}; {time.monotonic() - began:.1f} s in all, "
        f"{sum(startups):.1f} s of it in {len(startups)} server start-ups; "
        f"processes killed per cycle {killed}"
    )
    problems = check(ops, snapshot)
    if verified.returncode != 0 or "OK" not in verified.stdout:
        problems.append(f"kassa verify: {verified.stdout}{verified.stderr}")
    listing = "\n".join(problems[:40])
    assert not problems, (
        f"{len(problems)} problems with KASSA_CRASH_SEED={SEED} on {backend} "
        f"(server logs in {tmp_path}):\n{listing}"
    )
    # The test's own premises: kills hit a supervisor with its workers, and requests in flight.
    assert min(killed, default=0) >= 3, f"process groups killed: {killed}"
    assert any(a.outcome is Outcome.UNKNOWN for op in ops for a in op.attempts), "no kill hit"
