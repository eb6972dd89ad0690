"""The failover drill: Kassa on a three-node Patroni cluster, its leader killed under load.

    .venv/bin/python benchmarks/failover.py                  # 3 failovers (3-4 minutes)
    .venv/bin/python benchmarks/failover.py --failovers 1 --report drill.json

Needs the Debian packages ``patroni`` and ``etcd-server`` and PostgreSQL 15's binaries (it
installs nothing: ``apt-get install -y patroni etcd-server``). In a temporary folder it starts
etcd and three Patroni nodes (``deploy/patroni.yml``, synchronous_mode on, short timings: see
``failover_cluster``), runs ``kassa migrate`` through the multi-host URL
(``target_session_attrs=read-write``), starts two ``kassa serve`` processes and a ``kassa
worker``, and sets up a tenant with funded wallets and verified instruments. Then clients drive
withdrawals and payouts with Idempotency-Keys, logging every acknowledged request
(``acks.jsonl``) and retrying every unknown one with its key (``failover_load``). Each round
waits for a window of load, stalls the leader's replication for half a second (its WAL senders
frozen: synchronous commits wait, asynchronous ones would be acknowledged unreplicated),
SIGKILLs the leader's Patroni and PostgreSQL at once, waits for
Patroni to promote the synchronous standby and for the first 2xx, measures the load for another
window, and brings the dead node back as a replica. Finally it proves from the last leader that
every acknowledged operation is in the ledger exactly once and none twice (``failover_check``),
that ``kassa verify`` is clean and that the API processes never restarted, and prints the
outage of each failover and the throughput around it. Exit status 1 if anything was wrong, 2
if the cluster or Kassa could not be brought up.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import orjson

from failover_check import Verdict, check, check_replays, read_ledger
from failover_cluster import (
    REFERENCE_CONFIG,
    Cluster,
    ClusterError,
    Timings,
    running_cluster,
)
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


@dataclasses.dataclass(frozen=True)
class Options:
    failovers: int = 3
    clients: int = 8
    wallets: int = 16
    window: float = 10.0  # seconds of load measured before each kill and after each recovery
    min_acked: int = 100  # acknowledged operations before each kill, at least
    seed: int = 0  # 0: a random one
    timings: Timings = dataclasses.field(default_factory=Timings)
    keep: bool = False
    report: Path | None = None
    patroni_config: Path = REFERENCE_CONFIG  # each node's, with local addresses
    replication_stall: float = 0.5  # seconds the leader replicates nothing before its kill


@dataclasses.dataclass
class Failover:
    killed: str
    promoted: str
    processes_killed: int
    outage_s: float  # from the kill to the first 2xx of a request sent after it
    promotion_s: float  # from the kill to Patroni's new leader
    readyz_503: int  # /readyz answers 503 seen meanwhile
    before_per_s: float  # acknowledged operations a second in the window before the kill
    after_per_s: float  # ... and in the window after the first 2xx
    rejoined_s: float  # from the restart of the killed node to all three in again


@dataclasses.dataclass
class Report:
    seed: int
    failovers: list[Failover]
    operations: int
    acked: int
    acked_by_kind: dict[str, int]  # withdrawal, payout (created), PENDING, PROCESSING
    refused: int  # 4xx that is not "ask again": none is right, the wallets' funds are ample
    unknown: int
    attempts: int
    unknown_attempts: int
    bug_answers: int  # 5xx other than 503 with Retry-After
    lost: list[str]
    doubled: list[str]
    problems: list[str]
    replayed: int
    payouts_settled_by_worker: int
    payouts_settled_after_last_failover: int  # handed to the rail after it, settled since
    payouts_left_processing: int
    verify_ok: bool
    verify_output: str
    servers_restarted: bool
    seconds: float
    logs: str | None  # the folder kept with every process's log (--keep)

    @property
    def ok(self) -> bool:
        return (
            not (self.lost or self.doubled or self.problems or self.bug_answers or self.refused)
            and self.verify_ok
            and not self.servers_restarted
            and len(self.failovers) > 0
        )


async def _fail_over(cluster: Cluster, load: Load, watch: ReadyWatch, opts: Options) -> Failover:
    began = time.monotonic()
    await until(
        lambda: (
            time.monotonic() - began >= opts.window
            and load.acked_between(began, time.monotonic()) >= opts.min_acked
        ),
        "a window of load before the kill",
        opts.window + 120,
    )
    leader = await asyncio.to_thread(cluster.leader)
    if leader is None:
        raise ClusterError("no leader to kill")
    # The leader stops replicating a moment before it dies, as when its network falters
    # first: with synchronous replication its commits wait meanwhile and none is acknowledged
    # that the standby lacks; without it they would be, and the drill would find them lost.
    if opts.replication_stall > 0:
        if await asyncio.to_thread(leader.stall_replication) == 0:
            raise ClusterError(f"{leader.name} has no WAL sender to stall")
        await asyncio.sleep(opts.replication_stall)  # the fault's length, not synchronisation
    crashed = await asyncio.to_thread(leader.crash)
    killed_at = crashed.frozen_at
    promoted = await asyncio.to_thread(cluster.wait_new_leader, leader.name, 120)
    promoted_at = time.monotonic()
    recovered_at = await until(lambda: load.first_recovery(killed_at), "the first 2xx", 120)
    load.recovered_at = recovered_at
    await until(lambda: time.monotonic() >= recovered_at + opts.window, "the window after", 600)
    window_before = load.acked_between(killed_at - opts.window, killed_at)
    window_after = load.acked_between(recovered_at, recovered_at + opts.window)
    cluster.start_node(leader)
    rejoin_began = time.monotonic()
    await asyncio.to_thread(cluster.wait_healthy, 300)
    return Failover(
        killed=leader.name,
        promoted=promoted,
        processes_killed=crashed.killed,
        outage_s=round(recovered_at - killed_at, 2),
        promotion_s=round(promoted_at - killed_at, 2),
        readyz_503=watch.refused_between(killed_at, recovered_at),
        before_per_s=round(window_before / opts.window, 1),
        after_per_s=round(window_after / opts.window, 1),
        rejoined_s=round(time.monotonic() - rejoin_began, 1),
    )


async def run_drill(opts: Options) -> Report:
    seed = opts.seed or int.from_bytes(os.urandom(4), "big")
    started = time.monotonic()
    with running_cluster(opts.timings, opts.patroni_config, keep=opts.keep) as cluster:
        folder = cluster.folder / "kassa"
        folder.mkdir()
        admin = await asyncpg.connect(cluster.url("postgres"))
        await admin.execute("CREATE DATABASE kassa")
        await admin.close()
        dsn = cluster.url("kassa")
        kassa = Kassa(folder, dsn)
        kassa.cli("migrate")
        tenant_id, token = kassa.make_tenant("Drill")
        try:
            kassa.start()
            wallets = await set_up(kassa.servers[0], token, opts.wallets)
            load = Load(kassa.servers, token, wallets, opts.clients, folder / "acks.jsonl", seed)
            watch = ReadyWatch(kassa.servers)
            watch.start()
            load.start()
            failovers = []
            try:
                for _ in range(opts.failovers):
                    failovers.append(await _fail_over(cluster, load, watch, opts))
                    print(f"failover: {failovers[-1]}", file=sys.stderr, flush=True)
                await load.stop(settle_seconds=60)
            finally:
                await load.cancel()
                await watch.stop()
            settled, left = await settled_payouts(dsn, tenant_id, 60)
            ledger = await read_ledger(dsn, tenant_id)
            verdict: Verdict = check(load.ops, ledger, OPENING_BALANCE)
            await check_replays(verdict, load.ops, kassa.servers[0], token)
            restarted = kassa.restarted()
        finally:
            kassa.stop()
        verdict.problems += kassa.log_problems()
        verify = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "kassa", "verify"],
            env=kassa.env,
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    attempts = load.attempts()
    outcomes = [op.outcome for op in load.ops]
    return Report(
        seed=seed,
        failovers=failovers,
        operations=len(load.ops),
        acked=outcomes.count("acked"),
        acked_by_kind=dict(Counter(op.target or op.kind for op in load.ops if op.acked)),
        refused=outcomes.count("refused"),
        unknown=outcomes.count("unknown"),
        attempts=len(attempts),
        unknown_attempts=sum(1 for a in attempts if a.outcome == "unknown"),
        bug_answers=sum(1 for a in attempts if a.bug),
        lost=verdict.lost,
        doubled=verdict.doubled,
        problems=verdict.problems,
        replayed=verdict.replayed,
        payouts_settled_by_worker=settled,
        payouts_settled_after_last_failover=settled_since(load, ledger),
        payouts_left_processing=left,
        verify_ok=verify.returncode == 0,
        verify_output=(verify.stdout + verify.stderr).strip(),
        servers_restarted=restarted,
        seconds=round(time.monotonic() - started, 1),
        logs=str(cluster.folder) if opts.keep else None,
    )


def render(report: Report) -> str:
    lines = [
        f"failover drill (seed {report.seed}): {len(report.failovers)} failovers in"
        f" {report.seconds:.0f} s",
        "| # | killed | promoted | outage s | promotion s | /readyz 503s | before /s | after /s"
        " | rejoined s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for n, f in enumerate(report.failovers, 1):
        lines.append(
            f"| {n} | {f.killed} | {f.promoted} | {f.outage_s:.2f} | {f.promotion_s:.2f} |"
            f" {f.readyz_503} | {f.before_per_s:.1f} | {f.after_per_s:.1f} | {f.rejoined_s:.1f} |"
        )
    lines += [
        f"operations {report.operations}: acknowledged {report.acked} {report.acked_by_kind},"
        f" refused {report.refused},"
        f" unknown {report.unknown}; attempts {report.attempts}, of them unknown"
        f" {report.unknown_attempts} (retried with their key), 5xx other than 503 with"
        f" Retry-After: {report.bug_answers}",
        f"lost {len(report.lost)}, doubled {len(report.doubled)}, other problems"
        f" {len(report.problems)}; {report.replayed} acknowledged requests sent again with their"
        f" key answered the same bytes",
        f"payouts settled by the worker {report.payouts_settled_by_worker} (handed to the rail"
        f" after the last failover: {report.payouts_settled_after_last_failover}), left"
        f" PROCESSING until the worker's 10-minute recovery look {report.payouts_left_processing};"
        f" API processes restarted: {report.servers_restarted}",
        f"kassa verify: {'clean' if report.verify_ok else 'FAILED'}: {report.verify_output}",
    ]
    for problem in [*report.lost, *report.doubled, *report.problems][:50]:
        lines.append(f"  {problem}")
    kept = f" (logs in {report.logs})" if report.logs else ""
    lines.append(("OK" if report.ok else "FAILED") + kept)
    return "\n".join(lines)


def parse_args(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--wallets", type=int, default=16)
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured around kills")
    parser.add_argument("--min-acked", type=int, default=100, help="acks before each kill")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ttl", type=int, default=Timings.ttl)
    parser.add_argument("--loop-wait", type=int, default=Timings.loop_wait)
    parser.add_argument("--retry-timeout", type=int, default=Timings.retry_timeout)
    parser.add_argument("--keep", action="store_true", help="keep the folder and its logs")
    parser.add_argument("--report", type=Path, help="also write the report as JSON here")
    parser.add_argument(
        "--replication-stall", type=float, default=0.5, help="s without replication before a kill"
    )
    parser.add_argument(
        "--patroni-config",
        type=Path,
        default=REFERENCE_CONFIG,
        help="instead of deploy/patroni.yml",
    )
    ns = parser.parse_args(argv)
    timings = Timings(ns.ttl, ns.loop_wait, ns.retry_timeout)
    return Options(
        ns.failovers,
        ns.clients,
        ns.wallets,
        ns.window,
        ns.min_acked,
        ns.seed,
        timings,
        ns.keep,
        ns.report,
        ns.patroni_config,
        ns.replication_stall,
    )


def main(argv: Sequence[str]) -> int:
    opts = parse_args(argv)
    try:
        report = asyncio.run(run_drill(opts))
    except ClusterError as error:
        print(f"failover drill: {error}", file=sys.stderr)
        return 2
    print(render(report))
    if opts.report is not None:
        opts.report.write_bytes(
            orjson.dumps(dataclasses.asdict(report), option=orjson.OPT_INDENT_2)
        )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
