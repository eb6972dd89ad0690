"""Real ``kassa worker`` processes share the work, and ``kassa serve`` delivers by itself."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from kassa.kit.db import Database
from kassa.webhooks.tables import webhook_attempts, webhook_deliveries
from tests.helpers import create_wallet, deposit, kassa_env, make_tenant, start_server
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Receiver

EVENTS = 1000
BATCH = 20


def start_worker(database_url: str, folder: Path, n: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kassa", "worker", "--batch-size", str(BATCH)],
        cwd=folder,
        env=kassa_env(database_url),
        stdout=(folder / f"worker-{n}.log").open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_two_workers_deliver_a_thousand_events_once_each(
    hooks: Hooks, receiver: Receiver, fresh_database_url: str, tmp_path: Path
) -> None:
    await hooks.endpoint(receiver.url)
    wallet = await create_wallet(hooks.api)
    for _ in range(EVENTS - 1):
        await deposit(hooks.api, wallet["id"], 1)
    listed = await hooks.api.get("/v1/events", params={"limit": 1})
    assert listed.json()["has_more"] is True
    # Nothing is let through until more requests wait at once than one worker's batch holds.
    receiver.hold_until(BATCH + 1)

    workers = [start_worker(fresh_database_url, tmp_path, n) for n in (1, 2)]
    try:
        arrived = await asyncio.to_thread(receiver.wait_for, EVENTS, 180)
    finally:
        for process in workers:
            os.killpg(process.pid, signal.SIGTERM)
        codes = [process.wait(timeout=60) for process in workers]
    logs = "\n".join((tmp_path / f"worker-{n}.log").read_text() for n in (1, 2))
    assert arrived, f"{len(receiver.received)} of {EVENTS} arrived\n{logs[-3000:]}"
    assert codes == [0, 0], logs[-3000:]
    assert receiver.most_in_flight > BATCH

    ids = [request.headers["webhook-id"] for request in receiver.received]
    assert len(ids) == EVENTS
    assert len(set(ids)) == EVENTS  # no event twice
    async with hooks.db.read() as conn:
        attempts = (
            await conn.execute(select(webhook_attempts.c.attempt, webhook_attempts.c.worker))
        ).all()
        statuses: dict[str, int] = dict(
            (
                await conn.execute(
                    select(webhook_deliveries.c.status, func.count()).group_by(
                        webhook_deliveries.c.status
                    )
                )
            ).all()
        )
    assert statuses == {"succeeded": EVENTS}
    assert len(attempts) == EVENTS
    assert {row.attempt for row in attempts} == {1}
    assert len({row.worker for row in attempts}) == 2  # both did part of the work


async def test_kassa_serve_delivers_webhooks_itself(
    backend: str, fresh_database_url: str, receiver: Receiver, tmp_path: Path
) -> None:
    db = Database(fresh_database_url)
    await db.open()
    try:
        tenant = await make_tenant(db)
    finally:
        await db.close()
    # On by default on SQLite; PostgreSQL deployments turn it on (or run `kassa worker`).
    mode = "auto" if backend == "sqlite" else "on"
    with start_server(fresh_database_url, tmp_path, workers=1, KASSA_WORKER=mode) as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=30
        ) as api:
            created = await api.post("/v1/webhook-endpoints", json={"url": receiver.url})
            assert created.status_code == 201, created.text
            wallet = await create_wallet(api)
            assert await asyncio.to_thread(receiver.wait_for, 1, 60), server.log_path.read_text()
    (request,) = receiver.received
    payload = Webhook(created.json()["secret"]).verify(request.body, request.headers)
    assert payload["type"] == "wallet.created"
    assert payload["data"] == wallet
