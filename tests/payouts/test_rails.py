"""Payout rails and the payout worker: the sandbox settles by the injected clock, a failing
connector leaves a payout recoverable and recovery settles it once, PENDING payouts expire once
with two workers racing, and a pass settles its due payouts concurrently, up to its bound."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from kassa.app import create_app
from kassa.config import Settings
from kassa.events.tables import events
from kassa.kit.clock import FrozenClock
from kassa.kit.db import Database
from kassa.ledger.tables import journal_transactions
from kassa.ledger.verify import verify
from kassa.payouts.connectors import Connector, Manual, Outcome, PayoutRef, Sandbox, Submitted
from kassa.payouts.lifecycle import RECOVER_AFTER
from kassa.payouts.tables import sandbox_submissions
from kassa.payouts.worker import PayoutWorker
from tests.helpers import kassa_env, make_tenant, start_server
from tests.payouts.conftest import BANK_TRANSFER, Setup, move, preview, ready

DELAY = timedelta(seconds=5)
SANDBOX = {**BANK_TRANSFER, "connector": "sandbox", "fee": {"fixed": 0}, "min_amount": 1}


class Failing:
    """A rail that is down: every submission raises (or times out)."""

    name = "sandbox"

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def submit(self, payout: PayoutRef, now: datetime) -> Submitted:
        raise self.error

    async def poll(self, payout: PayoutRef, now: datetime) -> Any:
        raise self.error

    async def look_up(self, payout: PayoutRef, now: datetime) -> Any:
        raise self.error


@dataclass
class Rails:
    api: httpx.AsyncClient
    clock: FrozenClock
    db: Database

    def worker(self) -> PayoutWorker:
        rails: dict[str, Connector] = {"manual": Manual(), "sandbox": Sandbox(self.db, DELAY)}
        return PayoutWorker(self.db, self.clock, rails)

    async def payout(self, setup: Setup, amount: int) -> dict[str, Any]:
        payout = await preview(self.api, setup, amount)
        for status in ("PENDING", "PROCESSING"):
            moved = await move(self.api, payout["id"], status)
            assert moved.status_code == 200, moved.text
        shown: dict[str, Any] = (await self.api.get(f"/v1/payouts/{payout['id']}")).json()
        return shown

    async def status(self, payout: dict[str, Any]) -> tuple[str, str | None]:
        shown = (await self.api.get(f"/v1/payouts/{payout['id']}")).json()
        return shown["status"], shown["status_reason"]

    async def wallet(self, setup: Setup) -> tuple[int, int]:
        shown = (await self.api.get(f"/v1/wallets/{setup.wallet['id']}")).json()
        return shown["balance"], shown["held_balance"]

    async def count(self, type_: str) -> int:
        async with self.db.read() as conn:
            return int(await conn.scalar(select(func.count()).where(events.c.type == type_)) or 0)


async def _rails(url: str, connectors: dict[str, Connector] | None = None) -> AsyncIterator[Rails]:
    clock = FrozenClock(datetime(2026, 5, 1, 12, tzinfo=UTC))
    db = Database(url)
    await db.open()
    tenant = await make_tenant(db)
    settings = Settings(database_url=url, auth_cache_seconds=0, worker="off")
    rails = connectors or {"manual": Manual(), "sandbox": Sandbox(db, DELAY)}
    app = create_app(settings, clock=clock, connectors=rails)
    try:
        async with (
            app.lifespan(),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://kassa.test",
                headers={"Authorization": f"Bearer {tenant.key}"},
            ) as api,
        ):
            yield Rails(api, clock, db)
    finally:
        await db.close()


@pytest.fixture
async def rails(fresh_database_url: str) -> AsyncIterator[Rails]:
    async for made in _rails(fresh_database_url):
        yield made


async def test_the_sandbox_settles_after_its_delay(rails: Rails) -> None:
    setup = await ready(rails.api, 10_000, SANDBOX)
    completes = await rails.payout(setup, 1_000)
    fails = await rails.payout(setup, 1_013)
    silent = await rails.payout(setup, 1_099)
    assert await rails.wallet(setup) == (10_000, 3_112)
    worker = rails.worker()

    assert await worker.run_once() == 0  # nothing to ask before the delay
    rails.clock.advance(DELAY)
    assert await worker.run_once() == 3
    assert await rails.status(completes) == ("COMPLETED", None)
    assert await rails.status(fails) == ("FAILED", "INSUFFICIENT_FUNDS_AT_BANK")
    assert await rails.status(silent) == ("PROCESSING", None)
    assert await rails.wallet(setup) == (9_000, 1_099)

    # The silent one is looked up once it has been PROCESSING for RECOVER_AFTER.
    rails.clock.advance(RECOVER_AFTER)
    await worker.run_once()
    assert await rails.status(silent) == ("COMPLETED", None)
    assert await rails.wallet(setup) == (7_901, 0)
    assert await rails.count("payout.completed") == 2
    assert await rails.count("payout.failed") == 1
    async with rails.db.read() as conn:
        assert (await verify(conn, None)).problems == []


async def test_a_sandbox_payout_cannot_be_settled_by_hand(rails: Rails) -> None:
    setup = await ready(rails.api, 10_000, SANDBOX)
    payout = await rails.payout(setup, 1_000)
    assert payout["next_status"] == []
    refused = await move(rails.api, payout["id"], "COMPLETED")
    assert refused.status_code == 409
    assert refused.json()["code"] == "invalid_status_transition"


@pytest.mark.parametrize("error", [RuntimeError("rail down"), TimeoutError()])
async def test_a_failing_connector_leaves_the_payout_recoverable_and_recovery_settles_it_once(
    fresh_database_url: str, error: Exception
) -> None:
    async for rails in _rails(fresh_database_url, {"manual": Manual(), "sandbox": Failing(error)}):
        setup = await ready(rails.api, 10_000, SANDBOX)
        payout = await rails.payout(setup, 2_000)
        assert payout["status"] == "PROCESSING"
        assert await rails.wallet(setup) == (10_000, 2_000)
        first, second = rails.worker(), rails.worker()
        assert await first.run_once() == 0  # not before RECOVER_AFTER

        rails.clock.advance(RECOVER_AFTER)
        await asyncio.gather(first.run_once(), second.run_once())  # both hand it over again
        assert await rails.status(payout) == ("PROCESSING", None)
        # Past the rail's delay and the worker's next look (a worker that asked before the
        # delay was up asks again 30 s later).
        rails.clock.advance(timedelta(minutes=1))
        await asyncio.gather(first.run_once(), second.run_once())  # both hear COMPLETED
        await asyncio.gather(first.run_once(), second.run_once())

        assert await rails.status(payout) == ("COMPLETED", None)
        assert await rails.wallet(setup) == (8_000, 0)
        assert await rails.count("payout.completed") == 1
        async with rails.db.read() as conn:
            withdrawals = await conn.scalar(
                select(func.count()).where(journal_transactions.c.kind == "withdrawal")
            )
            assert withdrawals == 1
            assert (await verify(conn, None)).problems == []


async def test_a_pending_payout_expires_once_with_two_workers_racing(rails: Rails) -> None:
    await rails.api.put(
        "/v1/payment-options", json={"options": [SANDBOX], "pending_ttl_seconds": 3_600}
    )
    setup = await ready(rails.api, 10_000, SANDBOX)
    await rails.api.put(
        "/v1/payment-options", json={"options": [SANDBOX], "pending_ttl_seconds": 3_600}
    )
    payout = await preview(rails.api, setup, 700)
    assert (await move(rails.api, payout["id"], "PENDING")).status_code == 200
    assert await rails.wallet(setup) == (10_000, 700)
    first, second = rails.worker(), rails.worker()

    rails.clock.advance(timedelta(seconds=3_599))
    assert await first.run_once() == 0
    rails.clock.advance(timedelta(seconds=1))
    done = await asyncio.gather(first.run_once(), second.run_once())
    assert sorted(done) == [0, 1]
    assert await rails.status(payout) == ("CANCELLED", "EXPIRED")
    assert await rails.wallet(setup) == (10_000, 0)
    assert await rails.count("payout.cancelled") == 1
    assert await first.run_once() == 0
    late = await move(rails.api, payout["id"], "PROCESSING")
    assert late.status_code == 409
    async with rails.db.read() as conn:
        assert (await verify(conn, None)).problems == []


async def test_an_expired_preview_is_cancelled_once_by_the_worker(rails: Rails) -> None:
    setup = await ready(rails.api, 10_000, SANDBOX)
    payout = await preview(rails.api, setup, 700)
    first, second = rails.worker(), rails.worker()
    rails.clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    assert await first.run_once() == 0
    assert await rails.status(payout) == ("PREVIEW", None)

    rails.clock.advance(timedelta(seconds=1))  # the preview's expiration_time
    done = await asyncio.gather(first.run_once(), second.run_once())
    assert sorted(done) == [0, 1]
    assert await rails.status(payout) == ("CANCELLED", "EXPIRED")
    assert await rails.count("payout.cancelled") == 1
    assert await rails.wallet(setup) == (10_000, 0)  # a preview held nothing
    late = await move(rails.api, payout["id"], "PENDING")
    assert late.status_code == 409
    assert late.json()["code"] == "payout_expired"  # as before the worker came by
    shown = (await rails.api.get(f"/v1/payouts/{payout['id']}")).json()
    assert shown["next_status"] == []
    assert [step["status"] for step in shown["history"]] == ["PREVIEW", "CANCELLED"]


async def _processing_on_the_sandbox(api: httpx.AsyncClient) -> tuple[Setup, dict[str, Any]]:
    """A payout of 10.13 (which the sandbox fails) handed to the sandbox rail."""
    setup = await ready(api, 10_000, SANDBOX)
    payout = await preview(api, setup, 1_013)
    for status in ("PENDING", "PROCESSING"):
        assert (await move(api, payout["id"], status)).status_code == 200
    return setup, payout


async def _once_settled(api: httpx.AsyncClient, payout: dict[str, Any]) -> dict[str, Any]:
    """The payout once a worker has recorded its rail's outcome (or after a minute)."""
    deadline = time.monotonic() + 60
    shown = payout
    while time.monotonic() < deadline:
        shown = (await api.get(f"/v1/payouts/{payout['id']}")).json()
        if shown["status"] != "PROCESSING":
            break
        await asyncio.sleep(0.1)  # polling the API for the worker's result
    return shown


async def test_kassa_serve_settles_sandbox_payouts_itself(
    backend: str, fresh_database_url: str, tmp_path: Path
) -> None:
    db = Database(fresh_database_url)
    await db.open()
    try:
        tenant = await make_tenant(db)
    finally:
        await db.close()
    mode = "auto" if backend == "sqlite" else "on"
    with start_server(
        fresh_database_url, tmp_path, workers=1, KASSA_WORKER=mode, KASSA_SANDBOX_DELAY_SECONDS="0"
    ) as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=30
        ) as api:
            setup, payout = await _processing_on_the_sandbox(api)
            shown = await _once_settled(api, payout)
            assert shown["status"] == "FAILED", server.log_path.read_text()[-2000:]
            assert shown["status_reason"] == "INSUFFICIENT_FUNDS_AT_BANK"
            wallet = (await api.get(f"/v1/wallets/{setup.wallet['id']}")).json()
            assert wallet["held_balance"] == 0


def _start_worker(database_url: str, folder: Path, log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kassa", "worker", "--idle-seconds", "0.1"],
        cwd=folder,
        env=kassa_env(database_url, KASSA_SANDBOX_DELAY_SECONDS="0"),
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


async def test_a_kassa_worker_process_settles_sandbox_payouts(
    fresh_database_url: str, tmp_path: Path
) -> None:
    """``kassa worker`` beside a server that does no work itself: its outcome is recorded
    through the payout engine (on PostgreSQL the SQL function, on the process's own pool)."""
    db = Database(fresh_database_url)
    await db.open()
    try:
        tenant = await make_tenant(db)
    finally:
        await db.close()
    with start_server(fresh_database_url, tmp_path, workers=1, KASSA_WORKER="off") as server:
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {tenant.key}"}, timeout=30
        ) as api:
            setup, payout = await _processing_on_the_sandbox(api)
            log_path = tmp_path / "worker.log"
            worker = _start_worker(fresh_database_url, tmp_path, log_path)
            try:
                shown = await _once_settled(api, payout)
            finally:
                os.killpg(worker.pid, signal.SIGTERM)
                code = worker.wait(timeout=60)
            log = log_path.read_text()
            assert shown["status"] == "FAILED", log[-2000:]
            assert shown["status_reason"] == "INSUFFICIENT_FUNDS_AT_BANK"
            assert code == 0, log[-2000:]
            assert "payout_work_failed" not in log
            wallet = (await api.get(f"/v1/wallets/{setup.wallet['id']}")).json()
            assert wallet["held_balance"] == 0


class SubmitsThenDies:
    """The rail takes the payout, then the process dies before Kassa records the reference."""

    name = "sandbox"

    def __init__(self, rail: Sandbox) -> None:
        self.rail = rail

    async def submit(self, payout: PayoutRef, now: datetime) -> Submitted:
        await self.rail.submit(payout, now)
        raise ConnectionResetError("died after submitting")

    async def poll(self, payout: PayoutRef, now: datetime) -> Any:
        return await self.rail.poll(payout, now)

    async def look_up(self, payout: PayoutRef, now: datetime) -> Any:
        return await self.rail.look_up(payout, now)


async def test_a_payout_the_rail_took_but_kassa_did_not_record_is_found_by_look_up(
    fresh_database_url: str,
) -> None:
    probe = Database(fresh_database_url)
    rail = Sandbox(probe, DELAY)
    try:
        async for rails in _rails(
            fresh_database_url, {"manual": Manual(), "sandbox": SubmitsThenDies(rail)}
        ):
            setup = await ready(rails.api, 10_000, SANDBOX)
            payout = await rails.payout(setup, 3_000)
            assert payout["status"] == "PROCESSING"
            rails.clock.advance(RECOVER_AFTER)
            await asyncio.gather(rails.worker().run_once(), rails.worker().run_once())
            assert await rails.status(payout) == ("COMPLETED", None)
            assert await rails.wallet(setup) == (7_000, 0)
            assert await rails.count("payout.completed") == 1
            async with rails.db.read() as conn:
                submissions = await conn.scalar(
                    select(func.count()).select_from(sandbox_submissions)
                )
            assert submissions == 1  # handed to the rail once, never twice
    finally:
        await probe.close()


class Together:
    """The sandbox rail, whose answers come back only in groups of ``parties`` (a worker that
    asked one payout at a time would wait for ever); it counts the most payouts waiting for
    their answer at once."""

    name = "sandbox"

    def __init__(self, parties: int) -> None:
        self.rail: Sandbox | None = None
        self.barrier = asyncio.Barrier(parties)
        self.waiting = 0
        self.most = 0

    async def _together(self, outcome: Outcome) -> Outcome:
        self.waiting += 1
        self.most = max(self.most, self.waiting)
        try:
            await self.barrier.wait()
        finally:
            self.waiting -= 1
        return outcome

    async def submit(self, payout: PayoutRef, now: datetime) -> Submitted:
        assert self.rail is not None
        return await self.rail.submit(payout, now)

    async def poll(self, payout: PayoutRef, now: datetime) -> Outcome:
        assert self.rail is not None
        return await self._together(await self.rail.poll(payout, now))

    async def look_up(self, payout: PayoutRef, now: datetime) -> Outcome:
        assert self.rail is not None
        return await self._together(await self.rail.look_up(payout, now))


async def test_the_worker_settles_its_due_payouts_together_up_to_its_bound(
    fresh_database_url: str,
) -> None:
    together = Together(parties=2)
    connectors: dict[str, Connector] = {"manual": Manual(), "sandbox": together}
    async for rails in _rails(fresh_database_url, connectors):
        together.rail = Sandbox(rails.db, DELAY)
        setup = await ready(rails.api, 10_000, SANDBOX)
        made = [await rails.payout(setup, 1_000 + n) for n in range(4)]
        worker = PayoutWorker(
            rails.db, rails.clock, connectors, concurrency=2, connector_timeout_seconds=10
        )

        rails.clock.advance(DELAY)
        assert await worker.run_once() == 4
        assert [await rails.status(payout) for payout in made] == [("COMPLETED", None)] * 4
        assert together.most == 2  # two at a time: never one alone, never more than the bound
        assert await rails.wallet(setup) == (10_000 - 4_006, 0)
        assert await rails.count("payout.completed") == 4
        async with rails.db.read() as conn:
            assert (await verify(conn, None)).problems == []
