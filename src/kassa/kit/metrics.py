"""The request and group-commit metrics every process counts (``kassa.metrics`` serves them,
with the gauges read from the database, at ``/metrics``). Labels never carry an id."""

from __future__ import annotations

import prometheus_client
from prometheus_client import Counter, Histogram

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

prometheus_client.disable_created_metrics()  # type: ignore[no-untyped-call]

REQUESTS = Counter(
    "kassa_http_requests",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)
REQUEST_SECONDS = Histogram(
    "kassa_http_request_duration_seconds",
    "Time from a request's arrival to its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BATCH_SIZE = Histogram(
    "kassa_hotpath_batch_size",
    "Deposits and immediate withdrawals per group-commit statement (PostgreSQL).",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128),
)
UNMATCHED = "unmatched"  # the route label of a request no route took (a 404)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    REQUESTS.labels(method, route, str(status)).inc()
    REQUEST_SECONDS.labels(method, route).observe(seconds)
