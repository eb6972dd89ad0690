"""Health endpoints for load balancers and orchestrators."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa.state import app_state

router = APIRouter(tags=["ops"])


@router.get("/healthz")
async def healthz() -> Response:
    """The process is up."""
    return Response(b'{"status":"ok"}', media_type="application/json")


@router.get("/readyz")
async def readyz(request: Request) -> Response:
    """The process can reach its database."""
    try:
        await app_state(request).db.ping()
    except Exception as error:  # noqa: BLE001 - any failure at all means "not ready"
        body = {"status": "unavailable", "detail": type(error).__name__}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    return Response(b'{"status":"ok","database":"ok"}', media_type="application/json")
