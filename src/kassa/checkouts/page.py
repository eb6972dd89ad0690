"""The hosted withdrawal page at a checkout session's ``url``: server-rendered (Jinja2), whole
without JavaScript (a small script only keeps the fee and total live).

Confirming creates the payout (reference ``checkout-<id>``, so a session pays out once), moves
it to PENDING (asking for a TOTP code on the page when the tenant's SCA policy says so) and to
PROCESSING, closes the session and sends the customer to ``return_url`` with
``checkout_id`` and ``status``. Each step runs under an Idempotency-Key of the session, so a
replayed or double-clicked submit moves money once. A link with a wrong secret shows the same
page as one naming no session; a used or expired session says so and moves nothing.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import orjson
from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.engine import Row

from kassa.auth import repository as auth_repository
from kassa.auth.service import Principal
from kassa.checkouts import repository, service
from kassa.idempotency import service as idempotency
from kassa.instruments import service as instruments
from kassa.instruments.schemas import NewInstrument
from kassa.kit.errors import KassaError
from kassa.kit.http import read_body
from kassa.kit.money import currency_exponent, major_to_minor, minor_to_major
from kassa.payouts import actions, options
from kassa.payouts.schemas import FeeRule, NewPayout, PayoutOut
from kassa.sca import service as sca
from kassa.sca.errors import ScaCodeInvalid
from kassa.sca.schemas import Attempt
from kassa.state import AppState, app_state
from kassa.wallets import service as wallets

router = APIRouter(include_in_schema=False)
templates = Environment(
    loader=PackageLoader("kassa.checkouts", "templates"),
    autoescape=select_autoescape(["html"]),
)
ASSETS = {"checkout.css": "text/css", "checkout.js": "text/javascript"}
CUSTOMER_SCOPES = frozenset({"wallets:read", "payouts:read", "payouts:write"})
OPTION_LABELS = {
    "BANK_TRANSFER": "Bank transfer",
    "CARD": "Card",
    "RAPID_TRANSFER": "Rapid transfer",
    "PAYSAFECASH": "Paysafecash",
    "PAGO_EFECTIVO": "PagoEfectivo",
}


def _headers(return_url: str | None, frame_ancestors: list[str] | None = None) -> dict[str, str]:
    """No third-party asset, no referrer (the secret is in the page's URL), no framing but by
    the origins the tenant named."""
    ancestors = " ".join(frame_ancestors) if frame_ancestors else "'none'"
    form_action = "'self'"
    if return_url:
        parts = urlsplit(return_url)
        form_action += f" {parts.scheme}://{parts.netloc}"
    policy = (
        "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self';"
        f" form-action {form_action}; frame-ancestors {ancestors}; base-uri 'none'"
    )
    return {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Content-Type-Options": "nosniff",
    }


def _html(
    name: str,
    status: int,
    target: str | None = None,
    frame_ancestors: list[str] | None = None,
    **context: Any,
) -> HTMLResponse:
    context.setdefault("experience", "web")
    context.setdefault("lang", "en")
    context.setdefault("merchant", "the merchant")
    body = templates.get_template(name).render(**context)
    return HTMLResponse(body, status_code=status, headers=_headers(target, frame_ancestors))


def _invalid() -> HTMLResponse:
    return _html(
        "closed.html",
        404,
        title="Link not valid",
        heading="This link is not valid",
        message="Ask the merchant for a new withdrawal link.",
    )


def _money(amount: int, currency: str, locale: str) -> str:
    try:
        Locale.parse(locale)
    except (UnknownLocaleError, ValueError):
        locale = "en"
    return format_currency(minor_to_major(amount, currency), currency, locale=locale)


def _back(row: Row[Any], status: str) -> str:
    parts = urlsplit(row.return_url)
    query = [*parse_qsl(parts.query), ("checkout_id", str(row.id)), ("status", status)]
    return str(parts._replace(query=urlencode(query)).geturl())


@router.get("/checkout-assets/{name}")
async def asset(name: str) -> Response:
    if name not in ASSETS:
        return Response(status_code=404)
    body = resources.files("kassa.checkouts").joinpath("assets", name).read_bytes()
    return Response(body, media_type=ASSETS[name], headers={"Cache-Control": "max-age=3600"})


async def _session(state: AppState, checkout_id: str, secret: str) -> Row[Any] | None:
    async with state.db.read() as conn:
        return await service.by_secret(conn, checkout_id, secret)


def _closed(row: Row[Any], now: datetime, merchant: str) -> HTMLResponse | None:
    status = service.shown(row, now).status
    if status == "open":
        return None
    words = {
        "completed": ("Withdrawal done", "This withdrawal has been confirmed already."),
        "cancelled": ("Withdrawal cancelled", "This withdrawal was cancelled."),
        "expired": ("Link expired", "This withdrawal link has expired."),
    }[status]
    return _html(
        "closed.html",
        410,
        row.return_url,
        title=words[0],
        heading=words[0],
        message=words[1],
        return_url=_back(row, status),
        merchant=merchant,
        experience=row.experience,
        lang=row.locale.split("_")[0],
    )


async def _form(
    state: AppState,
    row: Row[Any],
    secret: str,
    status: int = 200,
    *,
    error: str | None = None,
    amount_error: str | None = None,
    amount: str = "",
    chosen: str = "",
    sca_event: uuid.UUID | None = None,
    added: str | None = None,
    iban_error: str | None = None,
    holder: str = "",
) -> HTMLResponse:
    now = state.clock.now()
    async with state.db.read() as conn:
        tenant = await auth_repository.get_tenant(conn, row.tenant_id)
        wallet = await wallets.get_wallet(conn, row.tenant_id, row.wallet_id, now)
        tenant_options = await options.get_options(conn, row.tenant_id)
        owned = await instruments.list_instruments(conn, row.tenant_id, row.customer_id, 100)
    limit = _limit(row, wallet.available_balance)
    groups = []
    for option in tenant_options.options:
        if row.currency not in option.currencies:
            continue
        items = [
            {"value": f"{option.code}:{item.id}", "display": item.display}
            for item in owned.data
            if item.status == "verified" and item.type in option.instrument_types
        ]
        if items:
            groups.append(
                {
                    "code": option.code,
                    "label": OPTION_LABELS.get(option.code, option.code),
                    "methods": items,
                    "fee": option.fee,
                    "fee_shown": _fee_text(option.fee, row.currency, row.locale),
                }
            )
    waiting = [item.display for item in owned.data if item.status != "verified"]
    exponent = currency_exponent(row.currency)
    return _html(
        "page.html",
        status,
        row.return_url,
        tenant.checkout_frame_ancestors if tenant is not None else None,
        title="Withdraw money",
        action=f"/checkout/{row.id}/{secret}",
        csrf=service.csrf_token(secret),
        currency=row.currency,
        exponent=exponent,
        limit_shown=_money(limit, row.currency, row.locale),
        fixed=row.fixed_amount is not None,
        fixed_shown=_money(row.fixed_amount or 0, row.currency, row.locale),
        fixed_major=str(minor_to_major(row.fixed_amount or 0, row.currency)),
        methods=groups,
        error=error,
        amount_error=amount_error,
        amount=amount,
        chosen=chosen,
        fee_shown="-",
        total_shown="-",
        sca_event=sca_event,
        waiting=waiting,
        added=added,
        iban_error=iban_error,
        holder=holder,
        merchant=tenant.name if tenant is not None else "the merchant",
        experience=row.experience,
        lang=row.locale.split("_")[0],
    )


def _limit(row: Row[Any], available: int) -> int:
    if row.fixed_amount is not None:
        return int(row.fixed_amount)
    cap = available if row.max_amount is None else min(int(row.max_amount), available)
    return max(cap, 0)


def _fee_text(fee: FeeRule, currency: str, locale: str) -> str:
    parts = []
    if fee.fixed:
        parts.append(_money(fee.fixed, currency, locale))
    if fee.bps:
        parts.append(f"{Decimal(fee.bps) / 100:g} %")
    return " + ".join(parts) or "none"


@router.get("/checkout/{checkout_id}/{secret}")
async def show(request: Request, checkout_id: str, secret: str) -> Response:
    state = app_state(request)
    row = await _session(state, checkout_id, secret)
    if row is None:
        return _invalid()
    closed = _closed(row, state.clock.now(), "the merchant")
    return closed if closed is not None else await _form(state, row, secret)


@router.post("/checkout/{checkout_id}/{secret}")
async def submit(request: Request, checkout_id: str, secret: str) -> Response:
    state = app_state(request)
    row = await _session(state, checkout_id, secret)
    if row is None:
        return _invalid()
    try:
        raw = await read_body(request, json_body=False)
        form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
    except (KassaError, UnicodeDecodeError):
        return await _form(state, row, secret, 400, error="The form could not be read.")
    if not hmac.compare_digest(form.get("csrf", "").encode(), service.csrf_token(secret).encode()):
        return await _form(state, row, secret, 400, error="The form expired; try again.")
    now = state.clock.now()
    if form.get("action") == "cancel":
        async with state.db.write() as conn:
            await service.finish(conn, row.tenant_id, row.id, "cancelled", now)
        async with state.db.read() as conn:
            row = await repository.get_checkout(conn, None, row.id) or row
        return RedirectResponse(_back(row, row.status), 303, headers=_headers(row.return_url))
    closed = _closed(row, now, "the merchant")
    if closed is not None:
        return closed
    if form.get("action") == "add_iban":
        return await _add_iban(state, row, secret, form, now)
    return await _confirm(state, row, secret, form, now)


async def _add_iban(
    state: AppState, row: Row[Any], secret: str, form: dict[str, str], now: datetime
) -> Response:
    """A bank account added by the customer: checked, stored masked, unverified until the
    merchant verifies it (then it is offered)."""
    holder = form.get("holder_name", "").strip()
    try:
        body = NewInstrument(type="SEPA_BANK_ACCOUNT", holder_name=holder, iban=form.get("iban"))
        async with state.db.write() as conn:
            made = await instruments.create(
                conn, row.tenant_id, row.customer_id, body, state.box, now
            )
    except (KassaError, ValueError) as error:
        message = "Check the IBAN and the account holder's name."
        if isinstance(error, KassaError) and error.errors:
            message = "; ".join(item["message"] for item in error.errors)
        return await _form(state, row, secret, 422, iban_error=message, holder=holder)
    added = f"Added {made.display}: it can be used once it is verified."
    return await _form(state, row, secret, 200, added=added)


async def _confirm(
    state: AppState, row: Row[Any], secret: str, form: dict[str, str], now: datetime
) -> Response:
    chosen = form.get("method", "")
    typed = form.get("amount", "").strip()
    try:
        amount = (
            major_to_minor(typed, row.currency) if row.fixed_amount is None else row.fixed_amount
        )
    except KassaError:
        exponent = currency_exponent(row.currency)
        message = f"Enter an amount such as 10 or 10.5, with at most {exponent} decimal places."
        return await _form(
            state, row, secret, 422, amount_error=message, amount=typed, chosen=chosen
        )
    async with state.db.read() as conn:
        wallet = await wallets.get_wallet(conn, row.tenant_id, row.wallet_id, now)
        tenant = await auth_repository.get_tenant(conn, row.tenant_id)
    limit = _limit(row, wallet.available_balance)
    if amount <= 0 or amount > limit:
        message = f"Enter an amount up to {_money(limit, row.currency, row.locale)}."
        return await _form(
            state, row, secret, 422, amount_error=message, amount=typed, chosen=chosen
        )
    code, _, instrument = chosen.partition(":")
    try:
        instrument_id = uuid.UUID(instrument)
    except ValueError:
        return await _form(
            state,
            row,
            secret,
            422,
            error="Choose where to pay out to.",
            amount=typed,
            chosen=chosen,
        )
    assert tenant is not None
    principal = Principal(
        row.tenant_id,
        row.id,
        CUSTOMER_SCOPES,
        tenant.default_currency,
        tenant.timezone,
        customer_id=row.customer_id,
        sca_policy=tenant.sca_policy,
    )
    fingerprint = orjson.dumps({"amount": amount, "method": chosen})
    try:
        body = NewPayout(
            wallet_id=row.wallet_id,
            amount=amount,
            currency=row.currency,
            payment_option=code,
            instrument_id=instrument_id,
            reference=f"checkout-{row.id}",
            description="Withdrawal (hosted page)",
        )
    except ValueError:
        return await _form(
            state,
            row,
            secret,
            422,
            error="Choose where to pay out to.",
            amount=typed,
            chosen=chosen,
        )
    created = await actions.create(state, principal, body, _key(row, "create", fingerprint), now)
    if created.answer.status >= 400:
        return await _refused(state, row, secret, created.answer, typed, chosen)
    payout = PayoutOut.model_validate_json(created.answer.body)
    if form.get("sca_event") and form.get("code"):
        try:
            await sca.attempt(
                state.db,
                principal,
                uuid.UUID(form["sca_event"]),
                Attempt(code=form["code"]),
                state.box,
                now,
            )
        except (KassaError, ValueError) as error:
            message = error.detail if isinstance(error, KassaError) else "Enter the 6-digit code."
            # A wrong code may be tried again on the same event (3 in all); a failed or expired
            # event is replaced by a new one when the customer confirms again.
            retry = None
            if isinstance(error, ScaCodeInvalid) or not isinstance(error, KassaError):
                retry = uuid.UUID(form["sca_event"]) if _is_uuid(form["sca_event"]) else None
            return await _form(
                state,
                row,
                secret,
                422,
                error=message,
                amount=typed,
                chosen=chosen,
                sca_event=retry,
            )
    for target in ("PENDING", "PROCESSING"):
        moved = await actions.change_status(
            state,
            principal,
            payout.id,
            target,
            None,
            _key(row, target, fingerprint),
            now,
        )
        if isinstance(moved, actions.AwaitingSca):
            return await _form(
                state,
                row,
                secret,
                200,
                sca_event=moved.event.id,
                amount=typed,
                chosen=chosen,
                error="Enter the code your authenticator app shows to confirm.",
            )
        if moved.answer.status >= 400 and not _already(moved.answer):
            return await _refused(state, row, secret, moved.answer, typed, chosen)
    async with state.db.write() as conn:
        await service.finish(
            conn, row.tenant_id, row.id, "completed", now, payout.id, payout.amount
        )
    # The outcome, then (by itself, or by the link) back to the merchant.
    async with state.db.read() as conn:
        shown = await instruments.find(conn, row.tenant_id, payout.instrument_id)
    return _html(
        "done.html",
        200,
        row.return_url,
        tenant.checkout_frame_ancestors,
        title="Withdrawal confirmed",
        amount=_money(payout.amount, row.currency, row.locale),
        destination=shown.display if shown is not None else "your account",
        return_url=_back(row, "completed"),
        merchant=tenant.name,
        experience=row.experience,
        lang=row.locale.split("_")[0],
    )


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _key(row: Row[Any], step: str, fingerprint: bytes) -> idempotency.Key | None:
    """The session's key for one step: the same submit again replays it, a different one (the
    amount changed after the first went through) is refused as a reuse."""
    return idempotency.key_for(
        row.tenant_id, f"checkout-{row.id}-{step}", "POST", f"/checkout/{row.id}", fingerprint
    )


def _already(answer: idempotency.Answer) -> bool:
    """A move refused because the payout is past it already (a submit that raced another)."""
    code: object = orjson.loads(answer.body).get("code")
    return code == "invalid_status_transition"


async def _refused(
    state: AppState,
    row: Row[Any],
    secret: str,
    answer: idempotency.Answer,
    typed: str,
    chosen: str,
) -> Response:
    problem = orjson.loads(answer.body)
    words = {
        "insufficient_funds": "The balance is too low for this amount and its fee.",
        "wallet_frozen": "This account is frozen: no withdrawal is possible now.",
        "wallet_closed": "This account is closed.",
        "instrument_not_verified": "This payout method is not verified yet.",
        "payment_option_refused": "This payout method does not take this amount.",
        "idempotency_key_reused": "This withdrawal was submitted already.",
        "duplicate_reference": "This withdrawal was submitted already.",
    }
    message = words.get(problem.get("code", ""), problem.get("detail", "The withdrawal failed."))
    return await _form(state, row, secret, 422, error=message, amount=typed, chosen=chosen)
