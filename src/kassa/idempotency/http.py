"""Running a mutating request's unit of work under its ``Idempotency-Key``, as an HTTP answer."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import Request
from fastapi.responses import Response

from kassa.auth.service import Principal
from kassa.idempotency import service as idempotency
from kassa.state import AppState


async def respond(
    request: Request,
    state: AppState,
    principal: Principal,
    raw: bytes,
    now: datetime,
    work: idempotency.Work,
    *,
    sealed: bool = False,
) -> Response:
    """Run a change's unit of work, with its Idempotency-Key if the request has one. A
    ``sealed`` answer (one that shows a secret) is stored encrypted with the operator's key."""
    target = request.url.path  # with its query, if any: it is part of what was asked
    if request.url.query:
        target += f"?{request.url.query}"
    key = idempotency.key_for(
        principal.tenant_id, request.headers.get(idempotency.HEADER), request.method, target, raw
    )
    ttl = timedelta(hours=state.settings.idempotency_ttl_hours)
    box = state.box if sealed else None
    return answer_response(await idempotency.run(state.db, key, work, now, ttl, box=box))


def answer_response(answer: idempotency.Answer) -> Response:
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=answer.media_type,
        headers=dict(answer.headers),
    )
