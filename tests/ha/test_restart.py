"""A single PostgreSQL server crashed and started again under load costs the clients only
retryable errors (503 with Retry-After), and Kassa recovers without being restarted.

Builds on ``tests/test_outage.py``, which stops its private server cleanly (``pg_ctl stop -m
fast``, or a restart) under a light load on one ``kassa serve``. Here the server dies as a
machine does: its postmaster and every backend SIGKILLed at once, statements in flight, then
started again (crash recovery), under the failover drill's load (``benchmarks/failover_load``):
two ``kassa serve`` processes and a ``kassa worker``, withdrawals and payouts on the sandbox
rail, every request with an Idempotency-Key and every unknown one retried with it. The private
server (``tests.test_outage.PrivatePostgres``: its own folder and port, as the ``postgres`` user,
always removed) keeps the shared one out of it.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson

from failover_check import check, check_replays, read_ledger
from failover_cluster import crash
from failover_kassa import (
    OPENING_BALANCE,
    Kassa,
    ReadyWatch,
    set_up,
    settled_payouts,
    settled_since,
    until,
)
from failover_load import Load
from tests.helpers import create_pg_database
from tests.test_outage import PrivatePostgres


async def test_a_crashed_postgresql_costs_only_503s_and_service_resumes(tmp_path: Path) -> None:
    pg = PrivatePostgres()
    try:
        pg.init()
        pg.start()
        url = await create_pg_database(pg.url("postgres"), "kassa")
        kassa = Kassa(tmp_path, url)
        kassa.cli("migrate")
        tenant_id, token = kassa.make_tenant("Crash")
        seed = random.SystemRandom().randrange(1, 10**9)
        try:
            kassa.start()
            pids = [process.pid for process in kassa.processes]
            wallets = await set_up(kassa.servers[0], token, 8)
            load = Load(kassa.servers, token, wallets, 4, tmp_path / "acks.jsonl", seed)
            watch = ReadyWatch(kassa.servers)
            watch.start()
            load.start()
            try:
                began = time.monotonic()
                await until(lambda: load.acked_between(began, time.monotonic()) >= 100, "load", 120)

                crashed = await asyncio.to_thread(crash, pg.data)
                assert crashed.killed >= 5, "the postmaster and its backends"
                killed_at = crashed.frozen_at
                # Stay down until both servers' clients and /readyz have been refused.
                await until(
                    lambda: (
                        watch.refused_between(killed_at, time.monotonic()) >= 2
                        and refused_by(load, killed_at) == set(kassa.servers)
                    ),
                    "503s from both servers while PostgreSQL is down",
                    120,
                )
                async with httpx.AsyncClient() as http:  # the counters stay in sight meanwhile
                    metrics = await http.get(f"{kassa.servers[0]}/metrics")
                await asyncio.to_thread(pg.start)  # crash recovery, then accepting connections
                started_at = time.monotonic()
                load.recovered_at = await until(
                    lambda: load.first_recovery(started_at), "a 2xx", 120
                )
                await until(
                    lambda: (
                        load.acked_between(load.recovered_at, time.monotonic()) >= 100
                        and handed_over_since(load, load.recovered_at)
                    ),
                    "load after the restart",
                    120,
                )
                await load.stop(settle_seconds=60)
            finally:
                await load.cancel()
                await watch.stop()
            await settled_payouts(url, tenant_id, 60)
            ledger = await read_ledger(url, tenant_id)
            verdict = check(load.ops, ledger, OPENING_BALANCE)
            await check_replays(verdict, load.ops, kassa.servers[1], token)
            still_running = [p.pid for p in kassa.processes if p.poll() is None]
        finally:
            kassa.stop()
        verify = kassa.cli("verify")
    finally:
        pg.destroy()

    attempts = load.attempts()
    statuses = Counter(a.status for a in attempts)
    print(f"seed {seed}: {len(load.ops)} operations, answers {dict(statuses)}")
    assert set(statuses) <= {200, 201, 503}, statuses
    assert statuses[503] > 0, "the crash must have cut into the load"
    for attempt in attempts:
        if attempt.status == 503:
            assert attempt.retry_after == "1", attempt
            assert attempt.code == "service_unavailable", attempt
    assert metrics.status_code == 200, metrics.text
    assert 'status="503"' in metrics.text
    assert "kassa_payouts_open" not in metrics.text, "no gauge from a database that is down"
    assert still_running == pids, "the API processes and the worker were never restarted"
    assert verdict.lost == []
    assert verdict.doubled == []
    assert verdict.problems == []
    assert [op for op in load.ops if op.outcome != "acked"] == []
    assert verdict.replayed == len(load.ops)
    assert settled_since(load, ledger) > 0, "the worker resumed after the restart"
    assert "OK" in verify
    assert kassa.log_problems() == []
    for log in ("serve-1.log", "serve-2.log"):
        events = [
            orjson.loads(line)["event"]
            for line in (tmp_path / log).read_text().splitlines()
            if line.startswith("{")
        ]
        outage = [e for e in events if e.startswith("database_")]
        assert outage == ["database_unavailable", "database_available_again"], (log, outage)


def handed_over_since(load: Load, moment: float) -> bool:
    """Whether a payout was moved to PROCESSING (acknowledged) after ``moment``."""
    return any(op.target == "PROCESSING" and at > moment for at, op in load.acks)


def refused_by(load: Load, since: float) -> set[str]:
    """The servers that answered 503 to a request sent after ``since``."""
    return {a.server for a in load.attempts() if a.sent_at > since and a.status == 503}
