"""One payout the worker fails at never holds up the others: each payout is its own failure
domain, a failing one backs off (30 s, doubling) instead of being tried every pass, and once
stuck it is logged as such, counted in /metrics and listed by ``kassa stuck``.

The faults are real and deterministic: a payout whose ``hold_id`` is made to point at no hold
(the ledger then refuses its capture or expiry), or a rail that fails or never answers for one
payout. The worker is the real one, on the real database, with the clock moved by hand.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from structlog.testing import capture_logs

from kassa.kit.clock import isoformat
from kassa.ledger.verify import verify
from kassa.payouts.connectors import Connector, Manual, Outcome, PayoutRef, Sandbox, Submitted
from kassa.payouts.failures import FIRST_RETRY, MAX_RETRY, STUCK_AFTER, retry_delay
from kassa.payouts.tables import payouts
from kassa.payouts.worker import PayoutWorker
from tests.helpers import run_cli
from tests.payouts.conftest import Setup, move, preview, ready
from tests.payouts.test_rails import DELAY, SANDBOX, Rails, _rails
from tests.test_metrics import gauge, samples_of

# What a tenant put on the poisoned payout: no log line may carry it.
REFERENCE = "order-7731-ada"
DESCRIPTION = "rent for flat 4b"


@pytest.fixture
async def rails(fresh_database_url: str) -> AsyncIterator[Rails]:
    async for made in _rails(fresh_database_url):
        yield made


@dataclass(frozen=True)
class WorkerState:
    failures: int
    error: str | None
    failing_since: datetime | None
    retry_at: datetime | None
    next_check_at: datetime | None


async def worker_state(rails: Rails, payout: dict[str, Any]) -> WorkerState:
    async with rails.db.read() as conn:
        row = (
            await conn.execute(
                select(
                    payouts.c.worker_failures,
                    payouts.c.worker_error,
                    payouts.c.worker_failing_since,
                    payouts.c.worker_retry_at,
                    payouts.c.next_check_at,
                ).where(payouts.c.id == uuid.UUID(payout["id"]))
            )
        ).one()
    return WorkerState(*row)


async def point_hold_at_nothing(rails: Rails, payout: dict[str, Any]) -> uuid.UUID:
    """The fault: the payout's hold_id names no hold, so the ledger refuses to capture or expire
    it (NotFound) every time. Returns the real hold, to put back."""
    payout_id = uuid.UUID(payout["id"])
    async with rails.db.write() as conn:
        real = await conn.scalar(select(payouts.c.hold_id).where(payouts.c.id == payout_id))
        await conn.execute(
            update(payouts).where(payouts.c.id == payout_id).values(hold_id=uuid.uuid4())
        )
    assert isinstance(real, uuid.UUID)
    return real


async def put_hold_back(rails: Rails, payout: dict[str, Any], hold_id: uuid.UUID) -> None:
    async with rails.db.write() as conn:
        await conn.execute(
            update(payouts).where(payouts.c.id == uuid.UUID(payout["id"])).values(hold_id=hold_id)
        )


async def processing(rails: Rails, setup: Setup, amount: int, **extra: Any) -> dict[str, Any]:
    payout = await preview(rails.api, setup, amount, **extra)
    for status in ("PENDING", "PROCESSING"):
        moved = await move(rails.api, payout["id"], status)
        assert moved.status_code == 200, moved.text
    return payout


async def tenant_of(rails: Rails, payout: dict[str, Any]) -> str:
    async with rails.db.read() as conn:
        found = await conn.scalar(
            select(payouts.c.tenant_id).where(payouts.c.id == uuid.UUID(payout["id"]))
        )
    return str(found)


async def stuck_listed(rails: Rails) -> dict[str, Any]:
    result = await asyncio.to_thread(run_cli, rails.db.url.raw, "stuck", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    listed: dict[str, Any] = json.loads(result.stdout)
    return listed


async def failing_gauges(api: httpx.AsyncClient) -> tuple[float, float]:
    response = await api.get("/metrics")
    assert response.status_code == 200, response.text
    samples = samples_of(response.text)
    return gauge(samples, "kassa_payouts_failing"), gauge(samples, "kassa_payouts_stuck")


def failures_logged(logs: list[MutableMapping[str, Any]]) -> list[MutableMapping[str, Any]]:
    return [entry for entry in logs if entry["event"] == "payout_work_failed"]


def test_the_back_off_doubles_from_30_seconds_up_to_an_hour() -> None:
    assert [retry_delay(n) for n in range(1, 5)] == [
        FIRST_RETRY,
        FIRST_RETRY * 2,
        FIRST_RETRY * 4,
        FIRST_RETRY * 8,
    ]
    assert retry_delay(8) == MAX_RETRY  # 30 s * 2**7 is past the hour
    assert retry_delay(10_000) == MAX_RETRY


async def test_a_payout_that_cannot_settle_backs_off_and_the_others_settle_on_time(
    rails: Rails,
) -> None:
    setup = await ready(rails.api, 10_000, SANDBOX)
    poisoned = await processing(rails, setup, 1_000, reference=REFERENCE, description=DESCRIPTION)
    rails.clock.advance(timedelta(seconds=1))  # the poisoned payout is due first
    healthy = await processing(rails, setup, 2_000)
    real_hold = await point_hold_at_nothing(rails, poisoned)
    first, second = rails.worker(), rails.worker()

    with capture_logs() as logs:
        # Both are due: the poisoned payout fails, the healthy one settles on this very pass,
        # and of two workers failing at the same payout, the failure is counted once.
        rails.clock.advance(DELAY)
        failed_at = rails.clock.now()
        await asyncio.gather(first.run_once(), second.run_once())
        assert await rails.status(healthy) == ("COMPLETED", None)
        assert await rails.status(poisoned) == ("PROCESSING", None)
        assert await worker_state(rails, poisoned) == WorkerState(
            failures=1,
            error="record: NotFound (not_found)",
            failing_since=failed_at,
            retry_at=failed_at + FIRST_RETRY,
            next_check_at=failed_at + FIRST_RETRY,
        )
        (logged,) = failures_logged(logs)
        assert logged["payout_id"] == poisoned["id"]
        assert (logged["failures"], logged["stuck"]) == (1, False)
        assert logged["error"] == "record: NotFound (not_found)"
        assert logged["log_level"] == "warning"

        # Not tried again before its back-off is up; then once per step, the wait doubling.
        worker = first
        rails.clock.advance(FIRST_RETRY - timedelta(seconds=1))
        assert await worker.run_once() == 0
        rails.clock.advance(timedelta(seconds=1))
        assert await worker.run_once() == 1
        second_failure = rails.clock.now()
        assert (await worker_state(rails, poisoned)).retry_at == second_failure + FIRST_RETRY * 2
        rails.clock.advance(FIRST_RETRY * 2 - timedelta(seconds=1))
        assert await worker.run_once() == 0
        rails.clock.advance(timedelta(seconds=1))
        assert await worker.run_once() == 1
        stuck_at = rails.clock.now()
        retry_at = stuck_at + FIRST_RETRY * 4
        assert [(entry["failures"], entry["stuck"]) for entry in failures_logged(logs)] == [
            (1, False),
            (2, False),
            (STUCK_AFTER, True),
        ]
        assert failures_logged(logs)[-1]["log_level"] == "error"
        state = await worker_state(rails, poisoned)
        assert (state.failures, state.failing_since, state.retry_at) == (
            STUCK_AFTER,
            failed_at,
            retry_at,
        )

        # A payout made now settles when it is due, while the stuck one keeps backing off.
        later = await processing(rails, setup, 3_000)
        rails.clock.advance(DELAY)
        assert await worker.run_once() == 1
        assert await rails.status(later) == ("COMPLETED", None)
        assert await rails.status(poisoned) == ("PROCESSING", None)

        # The operator sees it: kassa stuck lists it, /metrics counts it.
        assert await stuck_listed(rails) == {
            "payouts": [
                {
                    "id": poisoned["id"],
                    "tenant_id": await tenant_of(rails, poisoned),
                    "status": "PROCESSING",
                    "connector": "sandbox",
                    "failures": STUCK_AFTER,
                    "last_error": "record: NotFound (not_found)",
                    "failing_since": isoformat(failed_at),
                    "next_attempt_at": isoformat(retry_at),
                }
            ],
            "webhook_deliveries": [],
        }
        assert await failing_gauges(rails.api) == (1, 1)
        shown = await asyncio.to_thread(run_cli, rails.db.url.raw, "stuck")
        heading, line = shown.stdout.splitlines()
        assert heading == "kassa stuck: 1 payout(s), 0 webhook delivery(ies)"
        assert line.startswith(f"payout {poisoned['id']}  tenant ")
        assert f"{STUCK_AFTER} failures since {isoformat(failed_at)}" in line
        assert line.endswith("record: NotFound (not_found)")

        # Repaired, it settles at its next try and is no longer failing anywhere.
        await put_hold_back(rails, poisoned, real_hold)
        rails.clock.advance(retry_at - rails.clock.now())
        assert await worker.run_once() == 1
        assert await rails.status(poisoned) == ("COMPLETED", None)
        assert await worker_state(rails, poisoned) == WorkerState(0, None, None, None, None)
        assert logs[-1]["event"] == "payout_work_recovered"
        assert logs[-1]["payout_id"] == poisoned["id"]
        assert len(failures_logged(logs)) == STUCK_AFTER  # once per step, never per pass
    assert await failing_gauges(rails.api) == (0, 0)
    assert await rails.wallet(setup) == (4_000, 0)
    async with rails.db.read() as conn:
        assert (await verify(conn, None)).problems == []
    # No log line carried what the tenant put on the payout.
    everything = json.dumps(logs, default=str)
    assert REFERENCE not in everything
    assert DESCRIPTION not in everything


class TroubleFor:
    """The sandbox rail, except for one payout: for that one it refuses the connection, or
    never answers at all."""

    name = "sandbox"

    def __init__(self, rail: Sandbox, payout_id: str, *, hang: bool) -> None:
        self.rail = rail
        self.payout_id = uuid.UUID(payout_id)
        self.hang = hang

    async def _trouble(self, payout: PayoutRef) -> None:
        if payout.id != self.payout_id:
            return
        if self.hang:
            await asyncio.Event().wait()  # never set: only the worker's timeout ends this
        raise ConnectionRefusedError("the rail refused the connection")

    async def submit(self, payout: PayoutRef, now: datetime) -> Submitted:
        await self._trouble(payout)
        return await self.rail.submit(payout, now)

    async def poll(self, payout: PayoutRef, now: datetime) -> Outcome:
        await self._trouble(payout)
        return await self.rail.poll(payout, now)

    async def look_up(self, payout: PayoutRef, now: datetime) -> Outcome:
        await self._trouble(payout)
        return await self.rail.look_up(payout, now)


@pytest.mark.parametrize(
    ("hang", "kind"), [(False, "ConnectionRefusedError"), (True, "TimeoutError")]
)
async def test_a_rail_that_fails_or_hangs_for_one_payout_holds_up_no_other(
    rails: Rails, hang: bool, kind: str
) -> None:
    setup = await ready(rails.api, 10_000, SANDBOX)
    troubled = await processing(rails, setup, 1_000)
    rails.clock.advance(timedelta(seconds=1))
    healthy = await processing(rails, setup, 2_000)
    connectors: dict[str, Connector] = {
        "manual": Manual(),
        "sandbox": TroubleFor(Sandbox(rails.db, DELAY), troubled["id"], hang=hang),
    }
    worker = PayoutWorker(rails.db, rails.clock, connectors, connector_timeout_seconds=0.2)

    rails.clock.advance(DELAY)
    failed_at = rails.clock.now()
    assert await worker.run_once() == 2
    assert await rails.status(healthy) == ("COMPLETED", None)
    assert await rails.status(troubled) == ("PROCESSING", None)
    state = await worker_state(rails, troubled)
    assert (state.failures, state.error) == (1, f"connector: {kind}")
    assert state.next_check_at == failed_at + FIRST_RETRY
    assert await worker.run_once() == 0  # not asked again on the next pass


async def test_an_expiry_that_fails_backs_off_and_the_other_expiries_go_on(
    rails: Rails,
) -> None:
    setup = await ready(rails.api, 10_000, SANDBOX)
    await rails.api.put(
        "/v1/payment-options", json={"options": [SANDBOX], "pending_ttl_seconds": 3_600}
    )
    poisoned = await preview(rails.api, setup, 700)
    healthy = await preview(rails.api, setup, 800)
    for payout in (poisoned, healthy):
        assert (await move(rails.api, payout["id"], "PENDING")).status_code == 200
    real_hold = await point_hold_at_nothing(rails, poisoned)
    worker = rails.worker()

    rails.clock.advance(timedelta(seconds=3_600))
    failed_at = rails.clock.now()
    assert await worker.run_once() == 1
    assert await rails.status(healthy) == ("CANCELLED", "EXPIRED")
    assert await rails.status(poisoned) == ("PENDING", None)
    state = await worker_state(rails, poisoned)
    assert (state.failures, state.error) == (1, "expire: NotFound (not_found)")
    assert state.retry_at == failed_at + FIRST_RETRY
    assert await worker.run_once() == 0  # left alone until then

    rails.clock.advance(FIRST_RETRY)
    assert await worker.run_once() == 0  # tried, failed again
    assert (await worker_state(rails, poisoned)).failures == 2
    await put_hold_back(rails, poisoned, real_hold)
    rails.clock.advance(FIRST_RETRY * 2)
    assert await worker.run_once() == 1
    assert await rails.status(poisoned) == ("CANCELLED", "EXPIRED")
    assert (await worker_state(rails, poisoned)).failures == 0
    assert await rails.wallet(setup) == (10_000, 0)
    async with rails.db.read() as conn:
        assert (await verify(conn, None)).problems == []
