"""Running a mutating request's unit of work under its ``Idempotency-Key``, as an HTTP answer."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta

import orjson
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
    collection: str | None = None,
) -> Response:
    """Run a change's unit of work, with its Idempotency-Key if the request has one. A
    ``sealed`` answer (one that shows a secret) is stored encrypted with the operator's key. A
    change that creates an object in ``collection`` (its URL path) answers its 201 with the
    object's ``Location`` (:func:`with_location`)."""
    key = request_key(request, principal.tenant_id, raw)
    ttl = timedelta(hours=state.settings.idempotency_ttl_hours)
    box = state.box if sealed else None
    answer = await idempotency.run(state.db, key, work, now, ttl, box=box)
    if collection is not None:
        answer = with_location(answer, collection)
    return answer_response(answer)


def request_key(request: Request, tenant_id: uuid.UUID, raw: bytes) -> idempotency.Key | None:
    """The request's Idempotency-Key (None without one), fingerprinted over its method, its
    path with its query (part of what was asked) and its body."""
    target = request.url.path
    if request.url.query:
        target += f"?{request.url.query}"
    header = request.headers.get(idempotency.HEADER)
    return idempotency.key_for(tenant_id, header, request.method, target, raw)


def with_location(answer: idempotency.Answer, collection: str) -> idempotency.Answer:
    """``answer`` with ``Location: <collection>/<id>`` if it is a 201, the ``id`` read from its
    body: so a replayed 201, which is the stored body, carries it too, and nothing about the
    header needs storing. Any other answer is as it was."""
    if answer.status != 201:
        return answer
    created = orjson.loads(answer.body)["id"]
    location = ("location", f"{collection}/{created}")
    return dataclasses.replace(answer, headers=[*answer.headers, location])


def answer_response(answer: idempotency.Answer) -> Response:
    return Response(
        answer.body,
        status_code=answer.status,
        media_type=answer.media_type,
        headers=dict(answer.headers),
    )
