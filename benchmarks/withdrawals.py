#!/usr/bin/env python3
"""Kassa's withdrawal benchmark: immediate withdrawals through the real server.

    .venv/bin/python benchmarks/withdrawals.py [--seconds 15] [--clients 1,16,64]
        [--wallets 10000] [--workers 2] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]
    .venv/bin/python benchmarks/withdrawals.py --backend sqlite [--workers 1] [...]

One run creates a fresh database, migrates it, starts `kassa serve`, funds the wallets over
HTTP, drives `POST /v1/wallets/{id}/withdrawals` with wrk ("spread": a random wallet per
request; "hot": every request on one wallet), then the same spread withdrawals through each
dialect (Salla, WalletAPI, Autional), reads each worker's peak RSS, stops the server, runs
`kassa verify`, then runs the PostgreSQL yardstick (../shared/bench/yardstick) with the same
clients, seconds and wallets, and prints Kassa's figures as a ratio to it (and each dialect's
as a ratio to /v1's). The scenario is here; the machinery it runs on is `harness.py`. See
README.md.

With `--backend sqlite` the database is a fresh SQLite file (the server, 1 worker by default,
migrates it itself), the workloads are /v1's spread and hot, the database's write-ahead log is
checkpointed before each measurement, and the yardstick is ../shared/bench/yardstick-sqlite
(one connection, synchronous FULL and NORMAL, its file on the same disk), whose FULL figure
each of Kassa's is a ratio to."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import asyncpg
import httpx

from harness import (
    BENCH_DB,
    OTHER_CPU_WARN,
    YARDSTICK,
    YARDSTICK_DB,
    YARDSTICK_SQLITE,
    BenchError,
    Figures,
    OtherCpu,
    WrkResult,
    combine,
    cpu_seconds,
    drop_database,
    free_port,
    kassa_bin,
    kassa_json,
    load_average,
    log,
    lua_string,
    peak_rss_mib,
    recreate_database,
    run_kassa,
    run_wrk,
    run_yardstick_sqlite,
    settle_database,
    settle_sqlite,
    start_server,
    stop_server,
    wait_healthy,
    with_database,
    worker_pids,
)

WORKLOADS = ("spread", "hot")
# The same withdrawals (a random wallet per request) through each dialect, measured against
# /v1's spread in the same run.
DIALECTS = ("salla", "walletapi", "autional")
TARGET_DIALECT_RATIO = 0.8
FUND_AMOUNT = 100_000_000_000  # per spread wallet, in minor units
HOT_FUND_AMOUNT = 10**14
FUND_CONCURRENCY = 32
# Below uvicorn's 5 s keep-alive timeout: with httpx's default (also 5 s) a POST can go out on a
# connection the server is closing at that moment, and fail with ReadError.
FUND_KEEPALIVE_S = 1.0
WARMUP_SECONDS = 3
# Targets at the highest client count (reported, never enforced).
TARGET_SPREAD_RATIO = 0.4
TARGET_HOT_RATIO = 1.0
TARGET_P99_MS = 100.0
# SQLite's targets (1 worker), at SQLITE_TARGET_CLIENTS clients.
SQLITE_TARGET_CLIENTS = 16
SQLITE_TARGET_TPS = 2_000.0
SQLITE_TARGET_P99_MS = 20.0
SQLITE_TARGET_RATIO = 0.3  # to yardstick-sqlite with synchronous=FULL
SQLITE_SYNCHRONOUS = ("FULL", "NORMAL")  # the yardstick's runs; the ratio is to the first


@dataclasses.dataclass(frozen=True)
class Options:
    seconds: int
    clients: list[int]
    wallets: int
    workers: int
    pg_url: str
    idempotency_keys: bool = False
    backend: str = "postgresql"
    rounds: int = 1


# --- arguments -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--clients", default="1,16,64", help="comma-separated client counts")
    parser.add_argument("--wallets", type=int, default=10_000, help="wallets for 'spread'")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="kassa serve worker processes (default: 2 on PostgreSQL, 1 on SQLite)",
    )
    parser.add_argument(
        "--backend",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="the database Kassa runs on (sqlite: a fresh file; see the module's text)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="split each measurement into this many slices, the workloads taking turns"
        " (so that a later workload does not meet a bigger database or another moment's load)",
    )
    parser.add_argument(
        "--idempotency-keys",
        action="store_true",
        help="send a fresh Idempotency-Key with every withdrawal",
    )
    parser.add_argument(
        "--pg-url",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server (any existing database on it; the benchmark makes its own)",
    )
    ns = parser.parse_args(argv)
    try:
        clients = [int(c) for c in str(ns.clients).split(",") if c.strip()]
    except ValueError:
        parser.error(f"--clients must be comma-separated integers, not {ns.clients!r}")
    if not clients or min(clients) < 1:
        parser.error("--clients needs at least one count, each at least 1")
    workers = ns.workers if ns.workers is not None else (1 if ns.backend == "sqlite" else 2)
    if ns.seconds < 1 or ns.wallets < 1 or workers < 1 or ns.rounds < 1:
        parser.error("--seconds, --wallets, --workers and --rounds must be at least 1")
    if ns.seconds % ns.rounds:
        parser.error("--seconds must be a multiple of --rounds")
    return Options(
        seconds=ns.seconds,
        clients=clients,
        wallets=ns.wallets,
        workers=workers,
        pg_url=ns.pg_url,
        idempotency_keys=ns.idempotency_keys,
        backend=ns.backend,
        rounds=ns.rounds,
    )


# --- funding ---------------------------------------------------------------------------------


async def _create_funded_wallet(
    client: httpx.AsyncClient, gate: asyncio.Semaphore, customer_id: str, amount: int
) -> str:
    async with gate:
        created = await client.post(
            "/v1/wallets", json={"customer_id": customer_id, "currency": "EUR"}
        )
        if created.status_code != 201:
            raise BenchError(f"POST /v1/wallets answered {created.status_code}: {created.text}")
        wallet_id = str(created.json()["id"])
        funded = await client.post(f"/v1/wallets/{wallet_id}/deposits", json={"amount": amount})
        if funded.status_code != 201:
            raise BenchError(
                f"POST /v1/wallets/{wallet_id}/deposits answered {funded.status_code}: "
                f"{funded.text}"
            )
        return wallet_id


def customer_id(n: int) -> str:
    """Digits only, as Salla's customer ids are."""
    return str(7_000_000_000 + n)


async def _fund(base_url: str, key: str, wallets: int) -> tuple[list[str], str]:
    gate = asyncio.Semaphore(FUND_CONCURRENCY)
    limits = httpx.Limits(max_connections=FUND_CONCURRENCY, keepalive_expiry=FUND_KEEPALIVE_S)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60.0
    ) as client:
        spread = await asyncio.gather(
            *(
                _create_funded_wallet(client, gate, customer_id(i), FUND_AMOUNT)
                for i in range(wallets)
            )
        )
        hot = await _create_funded_wallet(client, gate, customer_id(wallets), HOT_FUND_AMOUNT)
    return list(spread), hot


def fund(base_url: str, key: str, wallets: int) -> tuple[list[str], str]:
    return asyncio.run(_fund(base_url, key, wallets))


# --- wrk -------------------------------------------------------------------------------------

LUA_TEMPLATE = """\
-- Generated by benchmarks/withdrawals.py: immediate withdrawals on a random wallet of `ids`.
local ids = {%(ids)s}
local headers = {["Authorization"] = %(auth)s, ["Content-Type"] = "application/json"}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

local keyed = %(keyed)s
local sent = 0

function init(args)
  math.randomseed(os.time() * 100 + (thread_no or 0))
end

function request()
  local id = ids[math.random(#ids)]
  local body = '{"amount": ' .. math.random(1000) .. '}'
  if keyed then
    sent = sent + 1
    headers["Idempotency-Key"] = thread_no .. "-" .. os.time() .. "-" .. sent
  end
  return wrk.format("POST", "/v1/wallets/" .. id .. "/withdrawals", headers, body)
end
"""


# Withdrawals through a dialect: a random wallet of `ids` (and its customer, `customers`), an
# amount in major units of EUR.
DIALECT_LUA = """\
-- Generated by benchmarks/withdrawals.py: %(dialect)s withdrawals on a random wallet.
local ids = {%(ids)s}
local customers = {%(customers)s}
local headers = {%(headers)s, ["Content-Type"] = "application/json"}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("thread_no", threads)
end

function init(args)
  math.randomseed(os.time() * 100 + (thread_no or 0))
end

function request()
  local n = math.random(#ids)
  local cents = math.random(1000)
  local major = math.floor(cents / 100) .. "." .. string.format("%%02d", cents %% 100)
  %(request)s
end
"""

DIALECT_REQUESTS = {
    "salla": (
        "local body = '{\"customer_id\": ' .. customers[n] .. ', \"amount\": ' .. major .. '}'\n"
        '  return wrk.format("POST", "/compat/salla/admin/v2/customers/wallets/withdraw",'
        " headers, body)"
    ),
    "walletapi": (
        "local body = '{\"Id\": \"' .. ids[n] .. '\", \"Amount\": ' .. major .. '}'\n"
        '  return wrk.format("POST", "/compat/walletapi/api/v1/wallet/withdraw",'
        " headers, body)"
    ),
    "autional": (
        "local body = '{\"amount\": \"' .. major .. '\"}'\n"
        '  return wrk.format("POST", "/compat/autional/wallets/" .. customers[n] ..'
        ' "/withdraw", headers, body)'
    ),
}


def write_dialect_lua(
    path: Path, dialect: str, wallet_ids: Sequence[str], key: str, tenant_id: str
) -> None:
    if dialect == "walletapi":
        headers = (
            f'["apikeypublic"] = {lua_string(key)}, ["apiclientpublic"] = {lua_string(tenant_id)}'
        )
    else:
        headers = f'["Authorization"] = {lua_string(f"Bearer {key}")}'
    path.write_text(
        DIALECT_LUA
        % {
            "dialect": dialect,
            "ids": ", ".join(lua_string(i) for i in wallet_ids),
            "customers": ", ".join(customer_id(n) for n in range(len(wallet_ids))),
            "headers": headers,
            "request": DIALECT_REQUESTS[dialect],
        }
    )


def write_lua(path: Path, wallet_ids: Sequence[str], key: str, *, keyed: bool = False) -> None:
    ids = ",\n  ".join(lua_string(i) for i in wallet_ids)
    path.write_text(
        LUA_TEMPLATE
        % {
            "ids": f"\n  {ids}\n",
            "auth": lua_string(f"Bearer {key}"),
            "keyed": "true" if keyed else "false",
        }
    )


# --- the yardstick ---------------------------------------------------------------------------


def run_yardstick(opts: Options) -> dict[tuple[str, int], Figures]:
    args = [
        str(YARDSTICK),
        "--url",
        opts.pg_url,
        "--clients",
        ",".join(map(str, opts.clients)),
        "--seconds",
        str(opts.seconds),
        "--wallets",
        str(opts.wallets),
        "--workload",
        ",".join(WORKLOADS),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"the yardstick exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    found: dict[tuple[str, int], Figures] = {}
    pattern = r"^yardstick (\w+) clients=(\d+) tps=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+)\s*$"
    for match in re.finditer(pattern, proc.stdout, re.MULTILINE):
        workload, clients, tps, p50, p99 = match.groups()
        found[(workload, int(clients))] = Figures(float(tps), float(p50), float(p99))
    missing = [(w, c) for w in WORKLOADS for c in opts.clients if (w, c) not in found]
    if missing:
        raise BenchError(f"the yardstick printed no figures for {missing}:\n{proc.stdout}")
    return found


# --- the run ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    kassa: dict[tuple[str, int], WrkResult]
    funding_s: float
    rss_mib: dict[int, float]
    restarted_workers: bool
    verify_line: str
    verify_ok: bool
    server_log: str


def measure_kassa(
    opts: Options,
    wrk: str,
    db_url: str,
    work: Path,
    other: OtherCpu,
    *,
    settle: Callable[[], None],
    workloads: Sequence[str] = (*WORKLOADS, *DIALECTS),
) -> Run:
    """``settle`` runs before each measurement; ``workloads``: of WORKLOADS and DIALECTS."""
    env = {**os.environ, "KASSA_DATABASE_URL": db_url}
    log("kassa migrate")
    run_kassa(env, "migrate")
    tenant = kassa_json(env, "tenants", "create", "Bench", "--currency", "EUR", "--json")
    key = str(kassa_json(env, "keys", "create", "--tenant", str(tenant["id"]), "--json")["key"])

    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = work / "server.log"
    results: dict[tuple[str, int], WrkResult] = {}
    with log_path.open("w") as log_file:
        log(f"kassa serve --workers {opts.workers} --port {port}")
        server = start_server(env, port, opts.workers, log_file)
        try:
            wait_healthy(server, base_url)
            # With one worker, `kassa serve` serves in its own process.
            started_workers = worker_pids(server.pid) or [server.pid]

            log(f"funding {opts.wallets} wallets and the hot wallet")
            began = time.monotonic()
            spread_ids, hot_id = fund(base_url, key, opts.wallets)
            funding_s = time.monotonic() - began
            log(f"funded {opts.wallets + 1} wallets in {funding_s:.1f} s")
            scripts: dict[str, Path] = {"spread": work / "spread.lua", "hot": work / "hot.lua"}
            write_lua(scripts["spread"], spread_ids, key, keyed=opts.idempotency_keys)
            write_lua(scripts["hot"], [hot_id], key, keyed=opts.idempotency_keys)
            for dialect in (w for w in workloads if w in DIALECTS):
                scripts[dialect] = work / f"{dialect}.lua"
                write_dialect_lua(scripts[dialect], dialect, spread_ids, key, str(tenant["id"]))

            log(f"warm-up: spread, {max(opts.clients)} clients, {WARMUP_SECONDS} s (not reported)")
            run_wrk(wrk, base_url, scripts["spread"], max(opts.clients), WARMUP_SECONDS)
            serving = sorted({server.pid, *started_workers})  # one worker: the server
            slices: dict[tuple[str, int], list[WrkResult]] = {}
            for clients in opts.clients:
                for _ in range(opts.rounds):
                    for workload in workloads:
                        settle()
                        other_before, began = other.seconds(), time.monotonic()
                        server_before = cpu_seconds(serving)
                        seconds = opts.seconds // opts.rounds
                        result = run_wrk(wrk, base_url, scripts[workload], clients, seconds)
                        elapsed = time.monotonic() - began
                        other_cores = (other.seconds() - other_before) / elapsed
                        result = dataclasses.replace(
                            result,
                            other_cpu=other_cores,
                            server_cpu_s=cpu_seconds(serving) - server_before,
                        )
                        slices.setdefault((workload, clients), []).append(result)
                        line = kassa_line(workload, clients, result)
                        log(
                            f"{line} requests={result.requests} other_cpu={other_cores:.2f} "
                            f"server_cpu_ms={result.server_cpu_ms_per_request:.2f}/request"
                        )
            results = {measured: combine(parts) for measured, parts in slices.items()}

            workers = worker_pids(server.pid) or [server.pid]
            rss = {pid: peak_rss_mib(pid) for pid in workers}
        finally:
            stop_server(server)

    log("kassa verify")
    verify = subprocess.run(
        [str(kassa_bin()), "verify"], env=env, capture_output=True, text=True, check=False
    )
    lines = (verify.stdout + verify.stderr).strip().splitlines()
    return Run(
        kassa=results,
        funding_s=funding_s,
        rss_mib=rss,
        restarted_workers=workers != started_workers,
        verify_line=lines[-1]
        if lines
        else f"(kassa verify printed nothing, exit {verify.returncode})",
        verify_ok=verify.returncode == 0,
        server_log=log_path.read_text(errors="replace"),
    )


def kassa_line(workload: str, clients: int, result: WrkResult) -> str:
    f = result.figures
    line = (
        f"kassa {workload} clients={clients} tps={f.tps:.1f} p50_ms={f.p50_ms:.2f} "
        f"p99_ms={f.p99_ms:.2f} non2xx={result.non2xx}"
    )
    errors = sum(result.socket_errors.values())
    if errors:
        line += " socket_errors=" + ",".join(f"{k}:{v}" for k, v in result.socket_errors.items())
    return line


def ratio(kassa: Figures, yard: Figures) -> float:
    return kassa.tps / yard.tps if yard.tps > 0 else 0.0


def report(
    opts: Options, run: Run, yard: dict[tuple[str, int], Figures], yard_other: float
) -> None:
    print(
        f"# {opts.seconds} s per measurement in {opts.rounds} round(s), {opts.wallets} wallets, "
        f"{opts.workers} workers, "
        f"{'an Idempotency-Key per request, ' if opts.idempotency_keys else ''}"
        f"{os.cpu_count()} cores; funding took {run.funding_s:.0f} s"
    )
    for workload in WORKLOADS:
        for clients in opts.clients:
            result = run.kassa[(workload, clients)]
            y = yard[(workload, clients)]
            print(
                f"{kassa_line(workload, clients, result)} | yardstick tps={y.tps:.1f} "
                f"p50_ms={y.p50_ms:.2f} p99_ms={y.p99_ms:.2f} "
                f"| ratio={ratio(result.figures, y):.2f} | other_cpu={result.other_cpu:.2f}"
            )
    for dialect in DIALECTS:
        for clients in opts.clients:
            result = run.kassa[(dialect, clients)]
            v1 = run.kassa[("spread", clients)].figures
            print(
                f"{kassa_line(dialect, clients, result)} | /v1 spread tps={v1.tps:.1f} "
                f"| ratio to /v1={ratio(result.figures, v1):.2f} "
                f"| other_cpu={result.other_cpu:.2f}"
            )
    for n, (pid, mib) in enumerate(sorted(run.rss_mib.items()), start=1):
        print(f"rss worker={n} pid={pid} peak_mib={mib:.1f}")
    print(f"yardstick other_cpu={yard_other:.2f} (over all its measurements)")
    noisy = max([yard_other, *(r.other_cpu for r in run.kassa.values())])
    if noisy > OTHER_CPU_WARN:
        print(
            f"warning: other processes used up to {noisy:.2f} cores during the measurements; "
            "the figures are distorted, run again on a quiet machine"
        )
    if run.restarted_workers:
        print("warning: the server's worker processes changed during the run (a worker died?)")
    print(run.verify_line)

    top = max(opts.clients)
    spread = run.kassa[("spread", top)].figures
    hot = run.kassa[("hot", top)].figures
    spread_ratio = ratio(spread, yard[("spread", top)])
    hot_ratio = ratio(hot, yard[("hot", top)])
    worst_p99 = max(spread.p99_ms, hot.p99_ms)

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    print(f"targets at clients={top}:")
    print(
        f"  spread ratio {spread_ratio:.2f} >= {TARGET_SPREAD_RATIO}: "
        f"{verdict(spread_ratio >= TARGET_SPREAD_RATIO)}"
    )
    print(
        f"  hot ratio {hot_ratio:.2f} >= {TARGET_HOT_RATIO}: "
        f"{verdict(hot_ratio >= TARGET_HOT_RATIO)}"
    )
    print(
        f"  p99 {worst_p99:.2f} ms (worst of spread, hot) <= {TARGET_P99_MS:.0f} ms: "
        f"{verdict(worst_p99 <= TARGET_P99_MS)}"
    )
    for dialect in DIALECTS:
        dialect_ratio = ratio(run.kassa[(dialect, top)].figures, spread)
        print(
            f"  {dialect} ratio to /v1 spread {dialect_ratio:.2f} >= {TARGET_DIALECT_RATIO}: "
            f"{verdict(dialect_ratio >= TARGET_DIALECT_RATIO)}"
        )


def server_log_summary(text: str) -> str | None:
    noisy = [
        line
        for line in text.splitlines()
        if re.search(r"error|exception|traceback|warning|critical", line, re.IGNORECASE)
    ]
    if not noisy:
        return None
    tail = "\n".join(noisy[-10:])
    return f"the server logged {len(noisy)} error/warning line(s); the last ones:\n{tail}"


def report_sqlite(opts: Options, run: Run, yard: dict[str, Figures], yard_other: float) -> None:
    full = yard[SQLITE_SYNCHRONOUS[0]]
    print(
        f"# SQLite: {opts.seconds} s per measurement, {opts.wallets} wallets, "
        f"{opts.workers} worker(s), "
        f"{'an Idempotency-Key per request, ' if opts.idempotency_keys else ''}"
        f"{os.cpu_count()} cores; funding took {run.funding_s:.0f} s"
    )
    for workload in WORKLOADS:
        for clients in opts.clients:
            result = run.kassa[(workload, clients)]
            print(
                f"{kassa_line(workload, clients, result)} "
                f"| ratio to yardstick-sqlite FULL={ratio(result.figures, full):.2f} "
                f"| server_cpu_ms={result.server_cpu_ms_per_request:.2f}/request "
                f"| other_cpu={result.other_cpu:.2f}"
            )
    for mode, figures in yard.items():
        print(
            f"yardstick-sqlite synchronous={mode} tps={figures.tps:.1f} "
            f"p50_ms={figures.p50_ms:.3f} p99_ms={figures.p99_ms:.3f}"
        )
    for n, (pid, mib) in enumerate(sorted(run.rss_mib.items()), start=1):
        print(f"rss worker={n} pid={pid} peak_mib={mib:.1f}")
    print(f"yardstick other_cpu={yard_other:.2f} (over all its measurements)")
    noisy = max([yard_other, *(r.other_cpu for r in run.kassa.values())])
    if noisy > OTHER_CPU_WARN:
        print(
            f"warning: other processes used up to {noisy:.2f} cores during the measurements; "
            "the figures are distorted, run again on a quiet machine"
        )
    print(run.verify_line)

    def verdict(ok: bool) -> str:
        return "MET" if ok else "NOT MET"

    at = SQLITE_TARGET_CLIENTS
    if at not in opts.clients:
        print(f"targets: not judged (they are at clients={at}, not measured)")
        return
    print(f"targets at clients={at}:")
    for workload in WORKLOADS:
        f = run.kassa[(workload, at)].figures
        print(
            f"  {workload}: {f.tps:.0f}/s >= {SQLITE_TARGET_TPS:.0f}: "
            f"{verdict(f.tps >= SQLITE_TARGET_TPS)}; p99 {f.p99_ms:.2f} ms <= "
            f"{SQLITE_TARGET_P99_MS:.0f} ms: {verdict(f.p99_ms <= SQLITE_TARGET_P99_MS)}; "
            f"ratio {ratio(f, full):.2f} >= {SQLITE_TARGET_RATIO}: "
            f"{verdict(ratio(f, full) >= SQLITE_TARGET_RATIO)}"
        )


def main_postgresql(opts: Options, wrk: str) -> int:
    if not os.access(YARDSTICK, os.X_OK):
        print(f"bench: the yardstick is missing or not executable: {YARDSTICK}", file=sys.stderr)
        return 2

    db_url = with_database(opts.pg_url, BENCH_DB)
    try:
        log(f"creating database {BENCH_DB}; {load_average()}")
        recreate_database(opts.pg_url)
        try:
            with (
                OtherCpu((BENCH_DB, YARDSTICK_DB)) as other,
                tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp,
            ):
                run = measure_kassa(
                    opts, wrk, db_url, Path(tmp), other, settle=lambda: settle_database(db_url)
                )
                log("the yardstick (pgbench, no application)")
                other_before, began = other.seconds(), time.monotonic()
                yard = run_yardstick(opts)
                yard_other = (other.seconds() - other_before) / (time.monotonic() - began)
        finally:
            log(f"dropping database {BENCH_DB}")
            drop_database(opts.pg_url)
    except (BenchError, OSError, asyncpg.PostgresError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1

    noisy = server_log_summary(run.server_log)
    if noisy:
        log(noisy)
    report(opts, run, yard, yard_other)
    if not run.verify_ok:
        print("bench: FAILED: kassa verify found mismatches", file=sys.stderr)
        return 1
    return 0


def main_sqlite(opts: Options, wrk: str) -> int:
    if not os.access(YARDSTICK_SQLITE, os.X_OK):
        print(
            f"bench: the yardstick is missing or not executable: {YARDSTICK_SQLITE}",
            file=sys.stderr,
        )
        return 2
    try:
        log(f"SQLite; {load_average()}")
        # PostgreSQL's processes are other load here: nothing of this run uses them.
        with (
            OtherCpu((), postgres=False) as other,
            tempfile.TemporaryDirectory(prefix="kassa-bench-") as tmp,
        ):
            path = Path(tmp) / "kassa.db"
            run = measure_kassa(
                opts,
                wrk,
                f"sqlite:///{path}",
                Path(tmp),
                other,
                settle=lambda: settle_sqlite(path),
                workloads=WORKLOADS,
            )
            log(f"the yardstick (sqlite3, no application; {', '.join(SQLITE_SYNCHRONOUS)})")
            other_before, began = other.seconds(), time.monotonic()
            yard = run_yardstick_sqlite(opts.seconds, opts.wallets, SQLITE_SYNCHRONOUS, Path(tmp))
            yard_other = (other.seconds() - other_before) / (time.monotonic() - began)
    except (BenchError, OSError) as exc:
        print(f"bench: FAILED: {exc}", file=sys.stderr)
        return 1

    noisy = server_log_summary(run.server_log)
    if noisy:
        log(noisy)
    report_sqlite(opts, run, yard, yard_other)
    if not run.verify_ok:
        print("bench: FAILED: kassa verify found mismatches", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "bench: wrk not found on PATH; install it (Debian/Ubuntu: "
            "'apt-get update && apt-get install -y wrk')",
            file=sys.stderr,
        )
        return 2
    if opts.backend == "sqlite":
        return main_sqlite(opts, wrk)
    return main_postgresql(opts, wrk)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
