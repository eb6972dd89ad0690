"""Small factories and the real-server runner shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from sqlalchemy import func, select

from kassa.auth import service as auth
from kassa.auth.scopes import ALL_SCOPES
from kassa.kit.clock import Clock, SystemClock
from kassa.kit.db import Database
from kassa.ledger.schemas import TransactionOut
from kassa.schema import accounts, holds, journal_entries, journal_transactions, wallets
from kassa.wallets.movements import MoneyRequest, Movement, move_in

ROOT = Path(__file__).resolve().parent.parent


async def create_pg_database(admin_url: str, name: str) -> str:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    base, _, _ = admin_url.rpartition("/")
    return f"{base}/{name}"


async def drop_pg_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


@dataclass(frozen=True)
class TenantKey:
    tenant_id: uuid.UUID
    key: str
    currency: str


async def make_tenant(
    db: Database, currency: str = "EUR", scopes: list[str] | None = None, timezone: str = "UTC"
) -> TenantKey:
    now = SystemClock().now()
    async with db.write() as conn:
        tenant = await auth.create_tenant(
            conn, f"tenant-{uuid.uuid4().hex[:6]}", currency, timezone, now
        )
        issued = await auth.create_key(
            conn, tenant.id, sorted(scopes if scopes is not None else ALL_SCOPES), "test", now
        )
    return TenantKey(tenant.id, issued.key, currency)


@dataclass(frozen=True)
class KassaServer:
    url: str
    database_url: str
    log_path: Path
    process: subprocess.Popen[bytes]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# The operator key every test process encrypts webhook secrets with.
TEST_SECRET_KEY = "kH1sJj6kzE8c9tq1Fh4o3mJY2p0Xv5nQ7Rw8Zb6Ld3A="


def kassa_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "KASSA_DATABASE_URL": database_url,
        # Servers deliver webhooks only in the tests that ask for it (KASSA_WORKER=auto).
        "KASSA_WORKER": "off",
        "KASSA_SECRET_KEY": TEST_SECRET_KEY,
        "KASSA_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
        **extra,
    }
    return env


@contextlib.contextmanager
def start_server(
    database_url: str, folder: Path, workers: int = 2, *, args: tuple[str, ...] = (), **env: str
) -> Iterator[KassaServer]:
    """Start ``kassa serve`` as its own process and wait until it answers /healthz."""
    port = free_port()
    log_path = folder / f"server-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kassa",
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                *args,
            ],
            cwd=folder,
            env=kassa_env(database_url, **env),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log_path)
        yield KassaServer(url, database_url, log_path, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kassa serve exited early:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)  # polling for readiness of another process, not a stand-in for sync
    raise RuntimeError(f"kassa serve did not become ready:\n{log_path.read_text()}")


def run_cli(database_url: str, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kassa", *args],
        env=kassa_env(database_url),
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


async def verify_tenant(server: KassaServer, tenant: TenantKey) -> str:
    """``kassa verify --tenant`` over the server's database; asserts it found nothing wrong."""
    result = await asyncio.to_thread(
        run_cli, server.database_url, "verify", "--tenant", str(tenant.tenant_id)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK" in result.stdout
    return result.stdout


async def row_counts(db: Database) -> dict[str, int]:
    counts = {}
    async with db.read() as conn:
        for table in (accounts, holds, journal_entries, journal_transactions, wallets):
            counts[table.name] = int(
                await conn.scalar(select(func.count()).select_from(table)) or 0
            )
    return counts


async def create_wallet(
    api: httpx.AsyncClient, currency: str = "EUR", customer_id: str | None = None, **extra: Any
) -> dict[str, Any]:
    response = await api.post(
        "/v1/wallets",
        json={
            "customer_id": customer_id or f"cust-{uuid.uuid4().hex[:8]}",
            "currency": currency,
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    wallet: dict[str, Any] = response.json()
    return wallet


async def deposit(
    api: httpx.AsyncClient, wallet_id: str, amount: int, **extra: Any
) -> dict[str, Any]:
    response = await api.post(f"/v1/wallets/{wallet_id}/deposits", json={"amount": amount, **extra})
    assert response.status_code == 201, response.text
    transaction: dict[str, Any] = response.json()
    return transaction


async def get_wallet(api: httpx.AsyncClient, wallet_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/wallets/{wallet_id}")
    assert response.status_code == 200, response.text
    wallet: dict[str, Any] = response.json()
    return wallet


async def move_money(
    db: Database,
    movement: Movement,
    tenant_id: uuid.UUID,
    wallet_id: uuid.UUID,
    amount: int,
    now: datetime | None = None,
) -> TransactionOut:
    """A deposit or withdrawal through the one movement function, as a route makes it; a
    refusal raises."""
    async with db.write() as conn:
        moved = await move_in(
            conn,
            MoneyRequest(tenant_id, wallet_id, movement, amount),
            now or SystemClock().now(),
        )
    return moved.transaction


@contextlib.asynccontextmanager
async def in_process_api(
    database_url: str, key: str, clock: Clock, *, auth_cache_seconds: float = 0
) -> AsyncIterator[httpx.AsyncClient]:
    """The app in this process with an injected clock (time moves when the test says), its
    client carrying ``key``."""
    from kassa.app import create_app
    from kassa.config import Settings

    settings = Settings(
        database_url=database_url, auth_cache_seconds=auth_cache_seconds, worker="off"
    )
    app = create_app(settings, clock=clock)
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://kassa.test",
            headers={"Authorization": f"Bearer {key}"},
        ) as client,
    ):
        yield client
