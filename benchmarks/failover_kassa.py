"""The failover drill's Kassa: ``kassa migrate``, two ``kassa serve`` processes and a ``kassa
worker`` on one database URL, a tenant with funded wallets and verified instruments, a watch on
each server's ``/readyz``, and the waits the drill and its tests poll with (each with a
deadline)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from cryptography.fernet import Fernet

from failover_cluster import ClusterError, free_port
from failover_load import SANDBOX_OPTION, Load, Wallet

OPENING_BALANCE = 10**12
SCOPES = "wallets:read,wallets:write,payouts:read,payouts:write"


class Kassa:
    """``kassa migrate``, two ``kassa serve`` processes and a ``kassa worker`` on one URL."""

    def __init__(self, folder: Path, database_url: str) -> None:
        self.folder = folder
        self.env = {
            **os.environ,
            "KASSA_DATABASE_URL": database_url,
            "KASSA_SECRET_KEY": Fernet.generate_key().decode(),
            "KASSA_WORKER": "off",
            "KASSA_SANDBOX_DELAY_SECONDS": "1",
            "KASSA_LOG_FORMAT": "json",
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.servers: list[str] = []

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "kassa", *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise ClusterError(f"kassa {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout

    def make_tenant(self, name: str) -> tuple[str, str]:
        """A tenant and an API key for the load (its id, the key), made with the CLI."""
        tenant = orjson.loads(self.cli("tenants", "create", name, "--currency", "EUR", "--json"))
        tenant_id = str(tenant["id"])
        issued = self.cli("keys", "create", "--tenant", tenant_id, "--scopes", SCOPES, "--json")
        return tenant_id, str(orjson.loads(issued)["key"])

    def start(self, servers: int = 2) -> None:
        for n in range(servers):
            port = free_port()
            self._spawn(f"serve-{n + 1}", "serve", "--port", str(port), "--workers", "1")
            self.servers.append(f"http://127.0.0.1:{port}")
        self._spawn("worker", "worker", "--idle-seconds", "0.2")
        deadline = time.monotonic() + 120
        for server in self.servers:
            while not _ready(server):
                if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                    raise ClusterError(f"kassa serve did not start; logs in {self.folder}")
                time.sleep(0.1)  # polling another process's readiness, with a deadline

    def _spawn(self, name: str, *args: str) -> None:
        with (self.folder / f"{name}.log").open("ab") as log:
            self.processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "kassa", *args],
                    env=self.env,
                    cwd=self.folder,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def restarted(self) -> bool:
        return any(process.poll() is not None for process in self.processes)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def log_problems(self) -> list[str]:
        found = []
        for log in sorted(self.folder.glob("*.log")):
            text = log.read_text(errors="replace")
            for marker in ("Traceback", "unhandled_error"):
                if marker in text:
                    found.append(f"{log.name} has {text.count(marker)} x {marker!r}")
        return found


def _ready(server: str) -> bool:
    try:
        return httpx.get(f"{server}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


async def set_up(server: str, token: str, wallets: int) -> list[Wallet]:
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=60) as api:

        async def expect(response: httpx.Response, status: int) -> dict[str, Any]:
            if response.status_code != status:
                raise ClusterError(
                    f"{response.request.url}: {response.status_code} {response.text}"
                )
            found: dict[str, Any] = response.json()
            return found

        await expect(await api.put("/v1/payment-options", json={"options": [SANDBOX_OPTION]}), 200)
        made = []
        for n in range(wallets):
            customer = f"drill-{n}"
            wallet = await expect(
                await api.post("/v1/wallets", json={"customer_id": customer, "currency": "EUR"}),
                201,
            )
            await expect(
                await api.post(
                    f"/v1/wallets/{wallet['id']}/deposits",
                    json={"amount": OPENING_BALANCE, "reference": f"fund-{n}"},
                ),
                201,
            )
            instrument = await expect(
                await api.post(
                    f"/v1/customers/{customer}/instruments",
                    json={
                        "holder_name": "Drill",
                        "type": "SEPA_BANK_ACCOUNT",
                        "iban": "DE89 3704 0044 0532 0130 00",
                    },
                ),
                201,
            )
            path = f"/v1/customers/{customer}/instruments/{instrument['id']}/verify"
            await expect(await api.post(path), 200)
            made.append(Wallet(str(wallet["id"]), str(instrument["id"])))
        return made


class ReadyWatch:
    """Asks each server's /readyz ten times a second, keeping every answer's status."""

    def __init__(self, servers: Sequence[str]) -> None:
        self.servers = servers
        self.answers: list[tuple[float, int | None]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        async with httpx.AsyncClient(timeout=5) as http:
            while True:
                for server in self.servers:
                    try:
                        status: int | None = (await http.get(f"{server}/readyz")).status_code
                    except httpx.HTTPError:
                        status = None
                    self.answers.append((time.monotonic(), status))
                await asyncio.sleep(0.1)  # the sampling rate of a health check

    def refused_between(self, start: float, end: float) -> int:
        return sum(1 for at, status in self.answers if start <= at <= end and status == 503)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


async def until(condition: Any, what: str, seconds: float) -> Any:
    deadline = time.monotonic() + seconds
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise ClusterError(f"waited {seconds:.0f} s for {what}")
        await asyncio.sleep(0.05)  # polling the clients' log for a condition, with a deadline
    return value


async def settled_payouts(dsn: str, tenant_id: str, seconds: float) -> tuple[int, int]:
    """Wait for the worker to settle every payout the rail got; (settled, still PROCESSING).
    A payout whose hand-over to the rail was cut by the failover stays PROCESSING until the
    worker's recovery look, 10 minutes later: by design, and counted, not waited for."""
    connection = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + seconds
        query = (
            "SELECT count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED')),"
            " count(*) FILTER (WHERE status = 'PROCESSING'),"
            " count(*) FILTER (WHERE status = 'PROCESSING' AND connector_reference IS NOT NULL)"
            " FROM payouts WHERE tenant_id = $1::uuid"
        )
        while True:
            row = await connection.fetchrow(query, tenant_id)
            assert row is not None
            settled, processing, handed = row
            if handed == 0 or time.monotonic() > deadline:
                return int(settled), int(processing)
            await asyncio.sleep(0.2)  # polling the worker's progress, with a deadline
    finally:
        await connection.close()


def settled_since(load: Load, ledger: dict[str, list[asyncpg.Record]]) -> int:
    """Payouts moved to PROCESSING (acknowledged) after the last recovery and since settled by
    the worker: it resumed its work on the new leader."""
    handed = {
        op.payout_id for at, op in load.acks if op.target == "PROCESSING" and at > load.recovered_at
    }
    return sum(
        1
        for row in ledger["payouts"]
        if str(row["id"]) in handed and row["status"] in ("COMPLETED", "FAILED")
    )
