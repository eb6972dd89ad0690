"""Health and metrics endpoints for load balancers, orchestrators and Prometheus."""

from __future__ import annotations

import hmac
import ipaddress
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa import metrics as kassa_metrics
from kassa.kit.errors import Forbidden, ServiceUnavailable, Unauthorized
from kassa.kit.http import bearer_token
from kassa.kit.openapi import MEANINGS, problem_response
from kassa.state import app_state

router = APIRouter(tags=["ops"])


def _status(example: dict[str, str], description: str) -> dict[str, Any]:
    schema = {
        "type": "object",
        "required": list(example),
        "properties": {name: {"type": "string"} for name in example},
    }
    return {
        "description": description,
        "content": {"application/json": {"schema": schema, "example": example}},
    }


@router.get(
    "/healthz",
    summary="Liveness",
    response_class=Response,
    responses={200: _status({"status": "ok"}, "the process is up")},
)
async def healthz() -> Response:
    """The process is up."""
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get(
    "/readyz",
    summary="Readiness",
    response_class=Response,
    responses={
        200: _status({"status": "ok", "database": "ok"}, "the database answers"),
        503: _status(
            {"status": "unavailable", "detail": "ConnectionRefusedError"},
            "the database does not answer (detail: the kind of failure); ask again after"
            " `Retry-After` seconds",
        ),
    },
)
async def readyz(request: Request) -> Response:
    """The process can reach its database: for a load balancer's or orchestrator's readiness
    check (no API key)."""
    try:
        await app_state(request).db.ping()
    except Exception as error:  # noqa: BLE001 - any failure at all means "not ready"
        body = {"status": "unavailable", "detail": type(error).__name__}
        return Response(
            orjson.dumps(body),
            status_code=503,
            media_type="application/json",
            headers={"Retry-After": str(ServiceUnavailable.retry_after)},
        )
    return Response(b'{"status":"ok","database":"ok"}', media_type="application/json")


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={
        200: {
            "description": "the text exposition format",
            "content": {
                kassa_metrics.CONTENT_TYPE: {
                    "schema": {"type": "string"},
                    "example": "kassa_webhook_deliveries_pending 0.0\n",
                }
            },
        },
        401: problem_response("KASSA_METRICS_TOKEN is set and the bearer token is not it"),
        403: problem_response("KASSA_METRICS_TOKEN is not set and the client is not local"),
        503: problem_response(MEANINGS[503]),
    },
    openapi_extra={
        "security": [{}, {"MetricsToken": []}],
        "x-components": {
            "securitySchemes": {
                "MetricsToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token in KASSA_METRICS_TOKEN (not an API key)",
                }
            }
        },
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format): with ``KASSA_METRICS_TOKEN`` set, only for
    ``Authorization: Bearer <that token>``; without it, only for clients on this machine."""
    state = app_state(request)
    expected = state.settings.metrics_token
    if expected is None:
        if not _on_this_machine(request):
            raise MetricsNotShared("set KASSA_METRICS_TOKEN to read /metrics from another machine")
    else:
        given = bearer_token(request.headers.get("authorization")) or ""
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("/metrics needs the bearer token set in KASSA_METRICS_TOKEN")
    try:
        async with state.db.read() as conn:
            gauges = await kassa_metrics.backlog(conn, state.clock.now())
    except ServiceUnavailable:
        # The database is down (a restart, a failover): the request counters, 503s included,
        # are what to watch now, so they are served without the gauges read from it.
        gauges = []
    return Response(kassa_metrics.render(gauges), media_type=kassa_metrics.CONTENT_TYPE)


class MetricsNotShared(Forbidden):
    title = "Without KASSA_METRICS_TOKEN, metrics are only for clients on this machine"


def _on_this_machine(request: Request) -> bool:
    # uvicorn puts a local proxy's X-Forwarded-For client here, so a proxied request is not local.
    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
