#!/usr/bin/env python3
"""Kassa's payout benchmark: the payout lifecycle through the real server.

    .venv/bin/python benchmarks/payouts.py [--seconds 10] [--clients 16,64] [--wallets 2000]
        [--workers 2] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python benchmarks/payouts.py --backend sqlite [--workers 1] [...]

One run creates a fresh database, migrates it, starts `kassa serve`, sets the tenant's payment
options (BANK_TRANSFER on the manual rail, RAPID_TRANSFER on the sandbox rail), funds the
wallets and gives each customer a verified instrument over HTTP. Then, at each client count,
every client runs payouts one after the other: PREVIEW (`POST /v1/payouts`), PENDING,
PROCESSING, COMPLETED (the merchant posting the outcome), each with its own Idempotency-Key,
on a random wallet. The same clients then send
`/v1` immediate withdrawals on random wallets for as long, through the same client code, and
the status changes' rate is printed as a ratio to that. `kassa verify` runs at the end.

Then, at the highest client count, payouts go PREVIEW, PENDING, PROCESSING on the sandbox rail
(its delay set to 1 s), and the benchmark waits until none is PROCESSING: how fast the payout
worker (one `kassa worker` on PostgreSQL, the server's own on SQLite) records the rail's
outcomes, against the rate they were handed over.

The clients (`payout_load.py`) are a small HTTP/1.1 keep-alive client on asyncio, one
connection each, so that the load generator costs little CPU on a small machine. Figures,
never assertions (see README.md).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from harness import (
    BenchError,
    OtherCpu,
    cpu_seconds,
    drop_database,
    free_port,
    kassa_bin,
    kassa_json,
    load_average,
    log,
    recreate_database,
    run_kassa,
    settle_database,
    settle_sqlite,
    start_server,
    stop_server,
    wait_healthy,
    with_database,
    worker_pids,
)
from payout_load import CHANGES, OPTION, SANDBOX_OPTION, drive

# Its own database, so that it can run beside the withdrawal benchmark's.
BENCH_DB = "kassa_bench_payouts"
TARGET_RATIO = 0.3
TARGET_P99_MS = 100.0
FUND_AMOUNT = 10**12
SETUP_CONCURRENCY = 16
WARMUP_SECONDS = 2
SANDBOX_DELAY_S = 1.0
SETTLE_TIMEOUT_S = 300.0
WORKER_START_S = 4.0


@dataclasses.dataclass(frozen=True)
class Options:
    seconds: int
    clients: list[int]
    wallets: int
    workers: int
    pg_url: str
    backend: str


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--clients", default="16,64")
    parser.add_argument("--wallets", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    ns = parser.parse_args(argv)
    workers = ns.workers if ns.workers is not None else (1 if ns.backend == "sqlite" else 2)
    clients = [int(c) for c in ns.clients.split(",") if c]
    return Options(ns.seconds, clients, ns.wallets, workers, ns.pg_url, ns.backend)


# --- setup -----------------------------------------------------------------------------------


async def _setup(base_url: str, token: str, wallets: int) -> list[tuple[str, str]]:
    gate = asyncio.Semaphore(SETUP_CONCURRENCY)
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=SETUP_CONCURRENCY, keepalive_expiry=1.0)
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60.0
    ) as api:

        async def expect(response: httpx.Response, status: int) -> dict[str, Any]:
            if response.status_code != status:
                raise BenchError(
                    f"{response.request.url} answered {response.status_code}: {response.text}"
                )
            found: dict[str, Any] = response.json()
            return found

        options = {"options": [OPTION, SANDBOX_OPTION]}
        await expect(await api.put("/v1/payment-options", json=options), 200)

        async def one(n: int) -> tuple[str, str]:
            customer = f"bench-{n}"
            async with gate:
                wallet = await expect(
                    await api.post(
                        "/v1/wallets", json={"customer_id": customer, "currency": "EUR"}
                    ),
                    201,
                )
                await expect(
                    await api.post(
                        f"/v1/wallets/{wallet['id']}/deposits", json={"amount": FUND_AMOUNT}
                    ),
                    201,
                )
                instrument = await expect(
                    await api.post(
                        f"/v1/customers/{customer}/instruments",
                        json={
                            "holder_name": "Bench",
                            "type": "SEPA_BANK_ACCOUNT",
                            "iban": "DE89 3704 0044 0532 0130 00",
                        },
                    ),
                    201,
                )
                await expect(
                    await api.post(
                        f"/v1/customers/{customer}/instruments/{instrument['id']}/verify"
                    ),
                    200,
                )
                return str(wallet["id"]), str(instrument["id"])

        return list(await asyncio.gather(*(one(n) for n in range(wallets))))


# --- the run ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Measured:
    kind: str
    clients: int
    per_second: float  # status changes (payouts) or withdrawals per second
    p50_ms: float
    p99_ms: float
    by_change: dict[str, tuple[float, float]]
    failures: int
    first_failure: str
    server_cpu_ms: float  # CPU of the server's processes per status change or withdrawal
    other_cpu: float


def _quantile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def measure(
    opts: Options, db_url: str, work: Path, settle: Any, other: OtherCpu
) -> tuple[list[Measured], Settled, str, bool]:
    env = {
        **os.environ,
        "KASSA_DATABASE_URL": db_url,
        "KASSA_SANDBOX_DELAY_SECONDS": str(SANDBOX_DELAY_S),
    }
    log("kassa migrate")
    run_kassa(env, "migrate")
    tenant = kassa_json(env, "tenants", "create", "Bench", "--currency", "EUR", "--json")
    token = str(kassa_json(env, "keys", "create", "--tenant", str(tenant["id"]), "--json")["key"])
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    measured: list[Measured] = []
    with (work / "server.log").open("w") as log_file:
        log(f"kassa serve --workers {opts.workers} --port {port}")
        server = start_server(env, port, opts.workers, log_file)
        try:
            wait_healthy(server, base_url)
            serving = sorted({server.pid, *(worker_pids(server.pid) or [server.pid])})
            log(f"setting up {opts.wallets} funded wallets with a verified instrument each")
            wallets = asyncio.run(_setup(base_url, token, opts.wallets))
            log(f"warm-up, {WARMUP_SECONDS} s each (not reported)")
            for kind in ("payouts", "withdrawals"):
                asyncio.run(drive(port, token, wallets, 8, WARMUP_SECONDS, kind))
            for clients in opts.clients:
                for kind in ("payouts", "withdrawals"):
                    settle()
                    other_before, cpu_before = other.seconds(), cpu_seconds(serving)
                    tally, elapsed = asyncio.run(
                        drive(port, token, wallets, clients, opts.seconds, kind)
                    )
                    cpu = cpu_seconds(serving) - cpu_before
                    every = [ms for values in tally.latencies_ms.values() for ms in values]
                    count = len(every)
                    measured.append(
                        Measured(
                            kind=kind,
                            clients=clients,
                            per_second=count / elapsed,
                            p50_ms=_quantile(every, 0.5),
                            p99_ms=_quantile(every, 0.99),
                            by_change={
                                name: (_quantile(values, 0.5), _quantile(values, 0.99))
                                for name, values in tally.latencies_ms.items()
                            },
                            failures=tally.failures,
                            first_failure=tally.first_failure,
                            server_cpu_ms=1000 * cpu / count if count else float("nan"),
                            other_cpu=(other.seconds() - other_before) / elapsed,
                        )
                    )
                    log(_line(measured[-1]))
            sandbox = _measure_sandbox(opts, env, base_url, port, token, wallets, work)
        finally:
            stop_server(server)
    log("kassa verify")
    verify = subprocess.run(
        [str(kassa_bin()), "verify"], env=env, capture_output=True, text=True, check=False
    )
    lines = (verify.stdout + verify.stderr).strip().splitlines()
    return (
        measured,
        sandbox,
        (lines[-1] if lines else "(kassa verify printed nothing)"),
        verify.returncode == 0,
    )


@dataclasses.dataclass(frozen=True)
class Settled:
    clients: int
    handed: int  # payouts handed to the sandbox rail (PREVIEW, PENDING, PROCESSING each)
    handed_per_second: float
    settled_per_second: float  # from the first hand-over to the last outcome recorded
    lag_s: float  # from the last hand-over to the last outcome, the rail's delay included
    left: int  # still PROCESSING when the wait ended


def _processing(api: httpx.Client) -> int:
    listed = api.get("/v1/payouts", params={"status": "PROCESSING", "limit": 100})
    return len(listed.json()["data"])


def _measure_sandbox(
    opts: Options,
    env: dict[str, str],
    base_url: str,
    port: int,
    token: str,
    wallets: list[tuple[str, str]],
    work: Path,
) -> Settled:
    """Payouts handed to the sandbox rail at the highest client count, and how fast the worker
    records their outcomes: on PostgreSQL one `kassa worker` beside the server, on SQLite the
    server's own worker."""
    clients = max(opts.clients)
    worker = None
    with (work / "worker.log").open("w") as log_file:
        if opts.backend == "postgresql":
            log("kassa worker")
            worker = subprocess.Popen(
                [str(kassa_bin()), "worker"],
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            time.sleep(WORKER_START_S)  # its imports and first pass, before the clock starts
        try:
            began = time.monotonic()
            tally, elapsed = asyncio.run(
                drive(port, token, wallets, clients, opts.seconds, "sandbox")
            )
            handed_at = time.monotonic()
            handed = len(tally.latencies_ms.get("PROCESSING", []))
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=base_url, headers=headers, timeout=30.0) as api:
                left = _processing(api)
                while left and time.monotonic() - handed_at < SETTLE_TIMEOUT_S:
                    time.sleep(0.25)
                    left = _processing(api)
            settled_at = time.monotonic()
        finally:
            if worker is not None:
                stop_server(worker)
    if left:  # what the worker said may tell why it fell behind
        for line in (work / "worker.log").read_text(errors="replace").splitlines()[-20:]:
            log(f"worker: {line}")
    settled = Settled(
        clients=clients,
        handed=handed,
        handed_per_second=handed / elapsed,
        settled_per_second=handed / (settled_at - began),
        lag_s=settled_at - handed_at,
        left=left,
    )
    log(_settled_line(settled))
    return settled


def _settled_line(s: Settled) -> str:
    line = (
        f"sandbox clients={s.clients} handed {s.handed} payouts to the rail "
        f"({s.handed_per_second:,.0f}/s); all settled {s.lag_s:.1f} s after the last "
        f"(rail delay {SANDBOX_DELAY_S:.0f} s): {s.settled_per_second:,.0f} payouts/s settled"
    )
    return line + (f"; {s.left}+ STILL PROCESSING" if s.left else "")


def _line(m: Measured) -> str:
    unit = "status changes/s" if m.kind == "payouts" else "withdrawals/s"
    line = (
        f"{m.kind} clients={m.clients} {m.per_second:,.0f} {unit} p50={m.p50_ms:.1f}ms "
        f"p99={m.p99_ms:.1f}ms server_cpu={m.server_cpu_ms:.2f}ms/each other_cpu={m.other_cpu:.2f}"
    )
    if m.failures:
        line += f" FAILURES={m.failures} (first: {m.first_failure})"
    return line


def report(opts: Options, measured: list[Measured], settled: Settled, verify_line: str) -> None:
    print(f"# payouts benchmark, {opts.backend}, kassa serve --workers {opts.workers}")
    print(f"# {load_average()}; {opts.seconds} s per measurement, {opts.wallets} wallets")
    by = {(m.kind, m.clients): m for m in measured}
    for clients in opts.clients:
        payouts, withdrawals = by[("payouts", clients)], by[("withdrawals", clients)]
        print(_line(payouts))
        for name in CHANGES:
            if name in payouts.by_change:
                p50, p99 = payouts.by_change[name]
                print(f"  {name:<10} p50={p50:.1f}ms p99={p99:.1f}ms")
        print(_line(withdrawals))
        ratio = payouts.per_second / withdrawals.per_second if withdrawals.per_second else 0.0
        met = ratio >= TARGET_RATIO and payouts.p99_ms <= TARGET_P99_MS
        print(
            f"ratio clients={clients} {ratio:.3f} (status changes / /v1 withdrawals; target "
            f">= {TARGET_RATIO} with p99 <= {TARGET_P99_MS:.0f} ms: {'met' if met else 'not met'})"
        )
    print(_settled_line(settled))
    print(f"kassa verify: {verify_line}")


def main(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp:
            if opts.backend == "sqlite":
                path = Path(tmp) / "kassa.db"
                with OtherCpu((), postgres=False) as other:
                    measured, settled, verify_line, ok = measure(
                        opts, f"sqlite:///{path}", Path(tmp), lambda: settle_sqlite(path), other
                    )
            else:
                db_url = with_database(opts.pg_url, BENCH_DB)
                log(f"creating database {BENCH_DB}; {load_average()}")
                recreate_database(opts.pg_url, BENCH_DB)
                try:
                    with OtherCpu((BENCH_DB,)) as other:
                        measured, settled, verify_line, ok = measure(
                            opts, db_url, Path(tmp), lambda: settle_database(db_url), other
                        )
                finally:
                    drop_database(opts.pg_url, BENCH_DB)
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1
    report(opts, measured, settled, verify_line)
    if not ok:
        print("bench: FAILED: kassa verify found mismatches", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
