"""The failover drill, shortened: one failover of a three-node Patroni cluster under load.

``benchmarks/failover.py`` with one kill instead of three and fewer clients: etcd and three
Patroni nodes (synchronous_mode on) on local ports, two ``kassa serve`` processes and a
``kassa worker`` on the multi-host URL, clients walking withdrawals and payouts with
Idempotency-Keys; the leader's Patroni and PostgreSQL SIGKILLed mid-load, the synchronous
standby promoted, unknown requests retried with their keys, the dead node back as a replica.
It must lose no acknowledged operation and double none (docs/deployment.md, docs/testing.md).

Needs the Debian packages ``patroni`` and ``etcd-server`` (``.ci/run`` installs them); like the
rest of the suite it fails, never skips, when what it needs is missing.

Mutations tried (in a copy of ``src`` run with ``PYTHONPATH``, which the servers inherit; the
list with what each gave is in docs/testing.md): the batcher answering a batch cut by a lost
connection with ``insufficient_funds`` instead of 503 (the "outcome unknown" case guessed);
caught, by ``refused == 0``. The batcher posting such a batch again is not caught, and with an
Idempotency-Key on every request is no loss or double (its stored answer replays).
"""

from __future__ import annotations

import os
import random

from failover import Options, render, run_drill
from failover_cluster import PACKAGES, missing_programs


async def test_a_failover_under_load_loses_nothing_and_doubles_nothing() -> None:
    missing = missing_programs()
    assert not missing, f"missing {missing}: apt-get install -y {PACKAGES}"
    seed = int(os.environ.get("KASSA_DRILL_SEED") or random.SystemRandom().randrange(1, 10**9))
    print(f"failover drill: KASSA_DRILL_SEED={seed}")
    report = await run_drill(
        Options(failovers=1, clients=4, wallets=8, window=3.0, min_acked=150, seed=seed)
    )
    print(render(report))

    (failover,) = report.failovers
    assert failover.promoted != failover.killed
    assert failover.processes_killed >= 3, "Patroni, the postmaster and its children"
    assert failover.readyz_503 > 0, "/readyz must answer 503 while there is no leader"
    assert report.unknown_attempts > 0, "the kill must have cut into the load"
    assert report.acked >= 300
    assert report.lost == []
    assert report.doubled == []
    assert report.problems == []
    assert report.bug_answers == 0, "only 503s with Retry-After while the leader is gone"
    assert report.unknown == 0, "every unknown operation resolved by its retry"
    assert report.refused == 0, "funds are ample: a refusal is a guess, never a right answer"
    assert report.replayed == report.acked
    assert report.verify_ok, report.verify_output
    assert not report.servers_restarted
    assert report.payouts_settled_after_last_failover > 0, "the worker resumed on the new leader"
    assert report.ok
