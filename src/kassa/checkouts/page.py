"""The hosted withdrawal page at a checkout session's ``url``: server-rendered (Jinja2), whole
without JavaScript (a small script only keeps the fee and total live; without it, *Show fee
and total* asks the server for them, and every re-rendered form shows them).

Confirming creates the payout (reference ``checkout-<id>``, so a session pays out once), moves
it to PENDING (asking for a TOTP code on the page when the tenant's SCA policy says so) and to
PROCESSING, closes the session, shows the outcome and sends the customer on to
``return_url`` with ``checkout_id`` and ``status`` (``confirming``; the pages are
``render``'s). Each step runs under an Idempotency-Key of the session, so a replayed or
double-clicked submit moves money once. A link with a wrong secret shows the same page as one
naming no session; a used or expired session says so and moves nothing. The customer may add
a bank account or a card (``adding``).
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.engine import Row

from kassa.checkouts import adding, confirming, render, repository, service
from kassa.kit.errors import KassaError
from kassa.kit.http import read_body
from kassa.state import AppState, app_state

router = APIRouter(include_in_schema=False)
ASSETS = {"checkout.css": "text/css", "checkout.js": "text/javascript"}


@router.get("/checkout-assets/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    body = resources.files("kassa.checkouts").joinpath("assets", name).read_bytes()
    return Response(body, media_type=ASSETS[name], headers={"Cache-Control": "max-age=3600"})


async def _session(state: AppState, checkout_id: str, secret: str) -> Row[Any] | None:
    async with state.db.read() as conn:
        return await service.by_secret(conn, checkout_id, secret)


@router.get("/checkout/{checkout_id}/{secret}")
async def show(request: Request, checkout_id: str, secret: str) -> Response:
    state = app_state(request)
    row = await _session(state, checkout_id, secret)
    if row is None:
        return render.invalid()
    closed = render.closed(row, state.clock.now(), "the merchant")
    return closed if closed is not None else await render.form_page(state, row, secret)


@router.post("/checkout/{checkout_id}/{secret}")
async def submit(request: Request, checkout_id: str, secret: str) -> Response:
    state = app_state(request)
    row = await _session(state, checkout_id, secret)
    if row is None:
        return render.invalid()
    try:
        raw = await read_body(request, json_body=False)
        form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except (KassaError, UnicodeDecodeError):
        return await render.form_page(state, row, secret, 400, error="The form could not be read.")
    if not hmac.compare_digest(form.get("csrf", "").encode(), service.csrf_token(secret).encode()):
        return await render.form_page(state, row, secret, 400, error="The form expired; try again.")
    now = state.clock.now()
    if form.get("action") == "cancel":
        async with state.db.write() as conn:
            await service.finish(conn, row.tenant_id, row.id, "cancelled", now)
        async with state.db.read() as conn:
            row = await repository.get_checkout(conn, None, row.id) or row
        return RedirectResponse(
            render.back(row, row.status), 303, headers=render.headers(row.return_url)
        )
    closed = render.closed(row, now, "the merchant")
    if closed is not None:
        return closed
    if form.get("action") == "add_iban":
        return await adding.add_iban(state, row, secret, form, now)
    if form.get("action") == "add_card":
        return await adding.add_card(state, row, secret, form, now)
    if form.get("action") == "review":
        return await confirming.review(state, row, secret, form, now)
    return await confirming.confirm(state, row, secret, form, now)
