#!/usr/bin/env python3
"""Kassa's withdrawal benchmark: immediate withdrawals through the real server, against PostgreSQL.

    .venv/bin/python benchmarks/withdrawals.py [--seconds 15] [--clients 1,16,64]
        [--wallets 10000] [--workers 2] [--pg-url postgresql://postgres@127.0.0.1:5432/postgres]

One run creates a fresh database, migrates it, starts `kassa serve`, funds the wallets over
HTTP, drives `POST /v1/wallets/{id}/withdrawals` with wrk ("spread": a random wallet per
request; "hot": every request on one wallet), reads each worker's peak RSS, stops the server,
runs `kassa verify`, then runs the PostgreSQL yardstick (../shared/bench/yardstick) with the
same clients, seconds and wallets, and prints Kassa's figures as a ratio to it. See README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
YARDSTICK = ROOT.parent / "shared" / "bench" / "yardstick"
BENCH_DB = "kassa_bench"
YARDSTICK_DB = "kassa_yardstick"  # the yardstick's own database (see its script)
WORKLOADS = ("spread", "hot")
FUND_AMOUNT = 100_000_000_000  # per spread wallet, in minor units
HOT_FUND_AMOUNT = 10**14
FUND_CONCURRENCY = 32
# Below uvicorn's 5 s keep-alive timeout: with httpx's default (also 5 s) a POST can go out on a
# connection the server is closing at that moment, and fail with ReadError.
FUND_KEEPALIVE_S = 1.0
HEALTH_TIMEOUT_S = 60.0
WARMUP_SECONDS = 3
# wrk's default 2 s timeout would drop the slowest requests from the latency figures.
WRK_TIMEOUT = "30s"
# Cores other processes may use during a measurement before the figures are called distorted.
OTHER_CPU_WARN = 0.1
# Targets at the highest client count (reported, never enforced).
TARGET_SPREAD_RATIO = 0.4
TARGET_HOT_RATIO = 1.0
TARGET_P99_MS = 100.0
SLOW_STATEMENT_MS = 500


class BenchError(Exception):
    """A step of the benchmark failed; the message says which and why."""


@dataclasses.dataclass(frozen=True)
class Figures:
    tps: float
    p50_ms: float
    p99_ms: float


@dataclasses.dataclass(frozen=True)
class WrkResult:
    figures: Figures
    requests: int
    non2xx: int
    socket_errors: dict[str, int]
    other_cpu: float = 0.0  # cores used by other processes meanwhile (see OtherCpu)


@dataclasses.dataclass(frozen=True)
class Options:
    seconds: int
    clients: list[int]
    wallets: int
    workers: int
    pg_url: str
    idempotency_keys: bool = False


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- other load on the machine ---------------------------------------------------------------


class OtherCpu:
    """Samples /proc to tell how much CPU processes other than this benchmark's used meanwhile.

    Ours: this process and its descendants (server, workers, wrk, the yardstick's pgbench), and
    the PostgreSQL backends serving the benchmark's databases; PostgreSQL's own background
    processes count as ours too. Other = all the CPU the machine spent (/proc/stat) minus ours:
    another test suite, a build. Figures measured while other load took more than a sliver of
    a core are not to be trusted. (Our processes' last fraction of a second before they exit
    lands in "other", which makes it a slight overestimate.)
    """

    INTERVAL_S = 0.5

    def __init__(self, our_databases: Sequence[str]) -> None:
        self._ours = frozenset(our_databases)
        self._tick = float(os.sysconf("SC_CLK_TCK"))
        self._seen: dict[int, float] = {}
        self._busy_s = 0.0
        self._other_s = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="other-cpu", daemon=True)

    def __enter__(self) -> OtherCpu:
        self._sample(count=False)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def seconds(self) -> float:
        """CPU-seconds used by other processes since the start."""
        with self._lock:
            return self._other_s

    def _run(self) -> None:
        while not self._stop.wait(self.INTERVAL_S):
            self._sample(count=True)

    def _sample(self, *, count: bool) -> None:
        # user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
        ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
        busy_s = (sum(ticks) - ticks[3] - ticks[4]) / self._tick
        procs: dict[int, tuple[int, float]] = {}  # pid -> (ppid, utime + stime in seconds)
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                fields = stat[stat.rindex(")") + 2 :].split()
                procs[int(entry.name)] = (
                    int(fields[1]),
                    (int(fields[11]) + int(fields[12])) / self._tick,
                )
        mine = {os.getpid()}
        grew = True
        while grew:
            found = {pid for pid, (ppid, _) in procs.items() if ppid in mine} - mine
            mine |= found
            grew = bool(found)
        ours = 0.0
        for pid, (_, cpu) in procs.items():
            # A process first seen now started since the last sample: all its time is new.
            delta = cpu - self._seen.get(pid, 0.0)
            if delta > 0 and (pid in mine or self._is_ours(pid)):
                ours += delta
        self._seen = {pid: cpu for pid, (_, cpu) in procs.items()}
        if count:
            with self._lock:
                self._other_s += max(0.0, busy_s - self._busy_s - ours)
        self._busy_s = busy_s

    def _is_ours(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, UnicodeDecodeError):
            return False
        if cmdline.startswith("postgres: "):
            if set(cmdline.split()) & self._ours:
                return True
            # A backend or an autovacuum worker names its database; background processes don't.
            return not ("(" in cmdline or "[local]" in cmdline or "autovacuum worker" in cmdline)
        return "bin/postgres " in cmdline  # the postmaster


# --- arguments -------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=int, default=15, help="seconds per measurement")
    parser.add_argument("--clients", default="1,16,64", help="comma-separated client counts")
    parser.add_argument("--wallets", type=int, default=10_000, help="wallets for 'spread'")
    parser.add_argument("--workers", type=int, default=2, help="kassa serve worker processes")
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
    if ns.seconds < 1 or ns.wallets < 1 or ns.workers < 1:
        parser.error("--seconds, --wallets and --workers must be at least 1")
    return Options(
        seconds=ns.seconds,
        clients=clients,
        wallets=ns.wallets,
        workers=ns.workers,
        pg_url=ns.pg_url,
        idempotency_keys=ns.idempotency_keys,
    )


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


# --- database --------------------------------------------------------------------------------


async def _admin(url: str, *statements: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def recreate_database(admin_url: str) -> None:
    asyncio.run(
        _admin(
            admin_url,
            f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)",
            f"CREATE DATABASE {BENCH_DB}",
            # Statements and lock waits over half a second go to PostgreSQL's log, to explain
            # a slow tail (this database only).
            f"ALTER DATABASE {BENCH_DB} SET log_min_duration_statement = {SLOW_STATEMENT_MS}",
            f"ALTER DATABASE {BENCH_DB} SET log_lock_waits = on",
        )
    )


def drop_database(admin_url: str) -> None:
    asyncio.run(_admin(admin_url, f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)"))


def settle_database(db_url: str) -> None:
    """What the yardstick does before each measurement: vacuum, then checkpoint."""
    asyncio.run(_admin(db_url, "VACUUM ANALYZE", "CHECKPOINT"))


# --- the kassa CLI ---------------------------------------------------------------------------


def kassa_bin() -> Path:
    found = Path(sys.prefix) / "bin" / "kassa"
    if found.exists():
        return found
    fallback = ROOT / ".venv" / "bin" / "kassa"
    if fallback.exists():
        return fallback
    raise BenchError("kassa executable not found: run 'uv sync' in the project first")


def run_kassa(env: Mapping[str, str], *args: str) -> str:
    proc = subprocess.run(
        [str(kassa_bin()), *args], env=dict(env), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise BenchError(
            f"'kassa {' '.join(args)}' exited {proc.returncode}:\n{proc.stderr}{proc.stdout}"
        )
    return proc.stdout


def kassa_json(env: Mapping[str, str], *args: str) -> dict[str, Any]:
    out = run_kassa(env, *args)
    try:
        value = json.loads(out)
    except json.JSONDecodeError as exc:
        raise BenchError(f"'kassa {' '.join(args)}' did not print JSON: {out!r}") from exc
    if not isinstance(value, dict):
        raise BenchError(f"'kassa {' '.join(args)}' printed {value!r}, not an object")
    return value


# --- the server ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    env: Mapping[str, str], port: int, workers: int, log_file: IO[str]
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(kassa_bin()), "serve", "--workers", str(workers), "--port", str(port)],
        env=dict(env),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(server: subprocess.Popen[bytes], base_url: str) -> None:
    deadline = time.monotonic() + HEALTH_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"kassa serve exited {server.returncode} before it was healthy")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise BenchError(f"kassa serve was not healthy within {HEALTH_TIMEOUT_S:.0f} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    try:
        os.killpg(server.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        log("kassa serve ignored SIGTERM for 30 s; killing it")
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def worker_pids(server_pid: int) -> list[int]:
    """The uvicorn worker processes: children of `kassa serve` started by multiprocessing spawn."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        match = re.search(r"^PPid:\s+(\d+)$", status, re.MULTILINE)
        if match and int(match.group(1)) == server_pid and "spawn_main" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    if match is None:
        raise BenchError(f"no VmHWM in /proc/{pid}/status")
    return int(match.group(1)) / 1024


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


async def _fund(base_url: str, key: str, wallets: int) -> tuple[list[str], str]:
    gate = asyncio.Semaphore(FUND_CONCURRENCY)
    limits = httpx.Limits(max_connections=FUND_CONCURRENCY, keepalive_expiry=FUND_KEEPALIVE_S)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers, limits=limits, timeout=60.0
    ) as client:
        spread = await asyncio.gather(
            *(
                _create_funded_wallet(client, gate, f"bench-{i}", FUND_AMOUNT)
                for i in range(wallets)
            )
        )
        hot = await _create_funded_wallet(client, gate, "bench-hot", HOT_FUND_AMOUNT)
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


def lua_string(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_\-. ]*", value):
        raise BenchError(f"refusing to put {value!r} into a Lua script")
    return f'"{value}"'


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


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def _ms(number: str, unit: str) -> float:
    return float(number) * _UNIT_MS[unit]


def parse_wrk(output: str) -> WrkResult:
    def need(pattern: str) -> re.Match[str]:
        match = re.search(pattern, output, re.MULTILINE)
        if match is None:
            raise BenchError(f"wrk output without /{pattern}/:\n{output}")
        return match

    tps = float(need(r"^Requests/sec:\s+([\d.]+)").group(1))
    p50 = need(r"^\s+50%\s+([\d.]+)(us|ms|s|m|h)\s*$")
    p99 = need(r"^\s+99%\s+([\d.]+)(us|ms|s|m|h)\s*$")
    requests = int(need(r"^\s+(\d+) requests in").group(1))
    non2xx_match = re.search(r"^\s*Non-2xx or 3xx responses:\s+(\d+)", output, re.MULTILINE)
    errors_match = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    socket_errors = dict.fromkeys(("connect", "read", "write", "timeout"), 0)
    if errors_match:
        socket_errors = dict(zip(socket_errors, map(int, errors_match.groups()), strict=True))
    return WrkResult(
        figures=Figures(tps=tps, p50_ms=_ms(*p50.groups()), p99_ms=_ms(*p99.groups())),
        requests=requests,
        non2xx=int(non2xx_match.group(1)) if non2xx_match else 0,
        socket_errors=socket_errors,
    )


def run_wrk(wrk: str, base_url: str, script: Path, clients: int, seconds: int) -> WrkResult:
    args = [
        wrk,
        f"-t{min(clients, 2)}",
        f"-c{clients}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT}",
        "--latency",
        "-s",
        str(script),
        base_url,
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"wrk exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    return parse_wrk(proc.stdout)


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


def measure_kassa(opts: Options, wrk: str, db_url: str, work: Path, other: OtherCpu) -> Run:
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
            started_workers = worker_pids(server.pid)

            log(f"funding {opts.wallets} wallets and the hot wallet")
            began = time.monotonic()
            spread_ids, hot_id = fund(base_url, key, opts.wallets)
            funding_s = time.monotonic() - began
            log(f"funded {opts.wallets + 1} wallets in {funding_s:.1f} s")
            scripts = {"spread": work / "spread.lua", "hot": work / "hot.lua"}
            write_lua(scripts["spread"], spread_ids, key, keyed=opts.idempotency_keys)
            write_lua(scripts["hot"], [hot_id], key, keyed=opts.idempotency_keys)

            log(f"warm-up: spread, {max(opts.clients)} clients, {WARMUP_SECONDS} s (not reported)")
            run_wrk(wrk, base_url, scripts["spread"], max(opts.clients), WARMUP_SECONDS)
            for workload in WORKLOADS:
                for clients in opts.clients:
                    settle_database(db_url)
                    other_before, began = other.seconds(), time.monotonic()
                    result = run_wrk(wrk, base_url, scripts[workload], clients, opts.seconds)
                    other_cores = (other.seconds() - other_before) / (time.monotonic() - began)
                    result = dataclasses.replace(result, other_cpu=other_cores)
                    results[(workload, clients)] = result
                    line = kassa_line(workload, clients, result)
                    log(f"{line} requests={result.requests} other_cpu={other_cores:.2f}")

            workers = worker_pids(server.pid)
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
        f"# {opts.seconds} s per measurement, {opts.wallets} wallets, {opts.workers} workers, "
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
                run = measure_kassa(opts, wrk, db_url, Path(tmp), other)
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


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
