"""What the benchmarks share: the machine's other load, the database, the kassa CLI and server,
and wrk. Figures, never assertions."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
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
# The SQLite yardstick: plain sqlite3, one connection, one transaction per withdrawal.
YARDSTICK_SQLITE = ROOT.parent / "shared" / "bench" / "yardstick-sqlite"
BENCH_DB = "kassa_bench"
YARDSTICK_DB = "kassa_yardstick"  # the yardstick's own database (see its script)

HEALTH_TIMEOUT_S = 60.0
# wrk's default 2 s timeout would drop the slowest requests from the latency figures.
WRK_TIMEOUT = "30s"
# Cores other processes may use during a measurement before the figures are called distorted.
OTHER_CPU_WARN = 0.1
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
    server_cpu_s: float = 0.0  # CPU-seconds the server's processes used meanwhile

    @property
    def server_cpu_ms_per_request(self) -> float:
        return 1000 * self.server_cpu_s / self.requests if self.requests else 0.0


def combine(slices: Sequence[WrkResult]) -> WrkResult:
    """One workload measured in several slices of equal length, interleaved with the other
    workloads (``--rounds``), as one result: the rate over all of them, the median slice's
    p50 and the worst slice's p99 (a slice's percentiles cannot be merged exactly)."""
    if not slices:
        raise ValueError("no slices to combine")
    p50s = sorted(r.figures.p50_ms for r in slices)
    errors = {k: sum(r.socket_errors.get(k, 0) for r in slices) for k in slices[0].socket_errors}
    return WrkResult(
        figures=Figures(
            tps=sum(r.figures.tps for r in slices) / len(slices),
            p50_ms=p50s[len(p50s) // 2],
            p99_ms=max(r.figures.p99_ms for r in slices),
        ),
        requests=sum(r.requests for r in slices),
        non2xx=sum(r.non2xx for r in slices),
        socket_errors=errors,
        other_cpu=sum(r.other_cpu for r in slices) / len(slices),
        server_cpu_s=sum(r.server_cpu_s for r in slices),
    )


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
    processes count as ours too, unless ``postgres`` is False (a SQLite run: then all of
    PostgreSQL's work is other load). Other = all the CPU the machine spent (/proc/stat) minus ours:
    another test suite, a build. Figures measured while other load took more than a sliver of
    a core are not to be trusted. (Our processes' last fraction of a second before they exit
    lands in "other", which makes it a slight overestimate.)
    """

    INTERVAL_S = 0.5

    def __init__(self, our_databases: Sequence[str], *, postgres: bool = True) -> None:
        self._ours = frozenset(our_databases)
        self._postgres = postgres
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
        if not self._postgres:
            return False
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


def recreate_database(admin_url: str, name: str = BENCH_DB) -> None:
    asyncio.run(
        _admin(
            admin_url,
            f"DROP DATABASE IF EXISTS {name} WITH (FORCE)",
            f"CREATE DATABASE {name}",
            # Statements and lock waits over half a second go to PostgreSQL's log, to explain
            # a slow tail (this database only).
            f"ALTER DATABASE {name} SET log_min_duration_statement = {SLOW_STATEMENT_MS}",
            f"ALTER DATABASE {name} SET log_lock_waits = on",
        )
    )


def drop_database(admin_url: str, name: str = BENCH_DB) -> None:
    asyncio.run(_admin(admin_url, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def settle_database(db_url: str) -> None:
    """What the yardstick does before each measurement: vacuum, then checkpoint."""
    asyncio.run(_admin(db_url, "VACUUM ANALYZE", "CHECKPOINT"))


def settle_sqlite(path: Path) -> None:
    """Before each SQLite measurement: the write-ahead log copied into the database and
    emptied, so that no measurement pays for the one before it."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()


def run_yardstick_sqlite(
    seconds: int, wallets: int, synchronous: Sequence[str], folder: Path
) -> dict[str, Figures]:
    """The SQLite yardstick once per synchronous setting, its file in ``folder`` (the same
    disk as Kassa's): figures by setting."""
    args = [
        str(YARDSTICK_SQLITE),
        "--seconds",
        str(seconds),
        "--wallets",
        str(wallets),
        "--synchronous",
        ",".join(synchronous),
        "--dir",
        str(folder),
    ]
    proc = subprocess.run(args, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise BenchError(f"yardstick-sqlite exited {proc.returncode}:\n{proc.stderr}{proc.stdout}")
    found: dict[str, Figures] = {}
    pattern = (
        r"^yardstick-sqlite synchronous=(\w+) tps=([\d.]+) p50_ms=([\d.]+) p99_ms=([\d.]+)\s*$"
    )
    for match in re.finditer(pattern, proc.stdout, re.MULTILINE):
        mode, tps, p50, p99 = match.groups()
        found[mode.upper()] = Figures(float(tps), float(p50), float(p99))
    missing = [mode for mode in synchronous if mode.upper() not in found]
    if missing:
        raise BenchError(f"yardstick-sqlite printed no figures for {missing}:\n{proc.stdout}")
    return found


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


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU-seconds (user + system) the processes ``pids`` used so far; one that is gone, 0."""
    tick = float(os.sysconf("SC_CLK_TCK"))
    total = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def peak_rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB$", status, re.MULTILINE)
    if match is None:
        raise BenchError(f"no VmHWM in /proc/{pid}/status")
    return int(match.group(1)) / 1024


def lua_string(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_\-. ]*", value):
        raise BenchError(f"refusing to put {value!r} into a Lua script")
    return f'"{value}"'


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
