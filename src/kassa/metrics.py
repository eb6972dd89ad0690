"""Prometheus metrics, served at ``/metrics``.

Each API worker counts the requests it answers (by method, route template and status) and times
them; on PostgreSQL it also records how many deposits and withdrawals each group-commit
statement carried. Under ``kassa serve --workers N`` (N > 1) the workers keep their figures in
files under ``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode; ``kassa serve``
makes a fresh directory unless one is given) and any worker's ``/metrics`` adds up all of them.

The work waiting in the database comes from the database at each scrape, so every API process
shows it wherever the background workers run: webhook deliveries pending and how late the most
overdue one is, payouts in each status that is not final, and the payouts and deliveries the
workers keep failing at (backing off, and stuck: see ``kassa.payouts.failures`` and
``kassa.webhooks.schedule``). Labels never carry a tenant, a wallet or any other id.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.metrics import MULTIPROCESS_DIR_ENV
from kassa.payouts import failures as payout_failures
from kassa.payouts import repository as payout_repository
from kassa.webhooks import queue_repository as webhook_queue
from kassa.webhooks.schedule import STUCK_AFTER as DELIVERY_STUCK_AFTER

CONTENT_TYPE = CONTENT_TYPE_LATEST
OPEN_PAYOUT_STATUSES = ("PREVIEW", "PENDING", "PROCESSING")


async def backlog(conn: AsyncConnection, now: datetime) -> list[Metric]:
    """The work waiting in the database, as gauges."""
    pending, oldest_due = await webhook_queue.pending_backlog(conn)
    deliveries = GaugeMetricFamily(
        "kassa_webhook_deliveries_pending",
        "Webhook deliveries not yet succeeded, failed or canceled.",
        value=pending,
    )
    overdue = max((now - oldest_due).total_seconds(), 0.0) if oldest_due is not None else 0.0
    lag = GaugeMetricFamily(
        "kassa_webhook_delivery_lag_seconds",
        "How long the most overdue pending delivery has been due (0 when none is): the "
        "webhook workers are behind when it grows.",
        value=overdue,
    )
    counts = await payout_repository.count_by_status(conn, OPEN_PAYOUT_STATUSES)
    open_payouts = GaugeMetricFamily(
        "kassa_payouts_open", "Payouts in each status that is not final.", labels=["status"]
    )
    for status in OPEN_PAYOUT_STATUSES:
        open_payouts.add_metric([status], counts.get(status, 0))
    return [deliveries, lag, open_payouts, *await _failing(conn)]


async def _failing(conn: AsyncConnection) -> list[Metric]:
    """The items the background workers keep failing at: any one of them needs a look once it
    is stuck (the same list: ``kassa stuck``)."""
    payouts_failing, payouts_stuck = await payout_failures.counts(conn)
    deliveries_failing, deliveries_stuck = await webhook_queue.failing_counts(conn)
    return [
        GaugeMetricFamily(
            "kassa_payouts_failing",
            "Open payouts whose last try by the payout worker failed (it backs off from them).",
            value=payouts_failing,
        ),
        GaugeMetricFamily(
            "kassa_payouts_stuck",
            f"Open payouts the payout worker failed at {payout_failures.STUCK_AFTER} or more "
            "times in a row: each needs an operator (kassa stuck).",
            value=payouts_stuck,
        ),
        GaugeMetricFamily(
            "kassa_webhook_deliveries_failing",
            "Pending webhook deliveries whose last attempt failed inside Kassa, not at the "
            "receiver.",
            value=deliveries_failing,
        ),
        GaugeMetricFamily(
            "kassa_webhook_deliveries_stuck",
            f"Pending webhook deliveries whose last {DELIVERY_STUCK_AFTER} or more "
            "attempts failed inside Kassa: each needs an operator (kassa stuck).",
            value=deliveries_stuck,
        ),
    ]


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return iter(self.metrics)


def render(gauges: list[Metric]) -> bytes:
    """The exposition text: this process's (or, in multiprocess mode, every worker's) counters
    and histograms, then ``gauges``."""
    if os.environ.get(MULTIPROCESS_DIR_ENV):
        workers = CollectorRegistry()
        multiprocess.MultiProcessCollector(workers)  # type: ignore[no-untyped-call]
    else:
        workers = REGISTRY
    now = CollectorRegistry(auto_describe=False)
    now.register(_Fixed(gauges))
    return generate_latest(workers) + generate_latest(now)
