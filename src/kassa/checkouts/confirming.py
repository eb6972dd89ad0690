"""A confirmed submit of the hosted page: the payout created, moved to PENDING (with SCA on the
page when the policy asks) and PROCESSING under the session's keys, the session closed, the
outcome (amount, fee and total) shown. A reviewed one (the page without JavaScript) checks the
same amount and method and shows the fee and total, moving nothing."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from fastapi.responses import Response
from sqlalchemy.engine import Row

from kassa.auth import repository as auth_repository
from kassa.auth.scopes import CUSTOMER_SCOPES
from kassa.auth.service import Principal
from kassa.checkouts import render, service
from kassa.checkouts.payout_reference import payout_reference
from kassa.idempotency import service as idempotency
from kassa.instruments import service as instruments
from kassa.kit.errors import KassaError
from kassa.kit.money import currency_exponent, major_to_minor
from kassa.payouts import actions
from kassa.payouts.schemas import NewPayout, PayoutOut
from kassa.sca import service as sca
from kassa.sca.errors import ScaCodeInvalid
from kassa.sca.schemas import Attempt
from kassa.state import AppState
from kassa.wallets import service as wallets


@dataclass(frozen=True)
class Entered:
    """What the customer submitted, checked: the amount within the session's limit, and the
    payout method (option code and instrument)."""

    amount: int
    code: str
    instrument_id: uuid.UUID
    tenant: Row[Any]


async def _entered(
    state: AppState, row: Row[Any], secret: str, form: dict[str, str], now: datetime
) -> Entered | Response:
    """The submit's amount and method, or the form again with what is wrong."""
    chosen = form.get("method", "")
    typed = form.get("amount", "").strip()
    try:
        amount = (
            major_to_minor(typed, row.currency) if row.fixed_amount is None else row.fixed_amount
        )
    except KassaError:
        exponent = currency_exponent(row.currency)
        message = f"Enter an amount such as 10 or 10.5, with at most {exponent} decimal places."
        return await render.form_page(
            state, row, secret, 422, amount_error=message, amount=typed, chosen=chosen
        )
    async with state.db.read() as conn:
        wallet = await wallets.get_wallet(conn, row.tenant_id, row.wallet_id, now)
        tenant = await auth_repository.get_tenant(conn, row.tenant_id)
    limit = render.limit_of(row, wallet.available_balance)
    if amount <= 0 or amount > limit:
        message = f"Enter an amount up to {render.money(limit, row.currency, row.locale)}."
        return await render.form_page(
            state, row, secret, 422, amount_error=message, amount=typed, chosen=chosen
        )
    code, _, instrument = chosen.partition(":")
    try:
        instrument_id = uuid.UUID(instrument)
    except ValueError:
        return await render.form_page(
            state,
            row,
            secret,
            422,
            error="Choose where to pay out to.",
            amount=typed,
            chosen=chosen,
        )
    assert tenant is not None
    return Entered(amount, code, instrument_id, tenant)


async def review(
    state: AppState, row: Row[Any], secret: str, form: dict[str, str], now: datetime
) -> Response:
    """The form again with the fee and total of what was entered (the page without JavaScript
    shows them this way before the customer confirms); nothing is created."""
    entered = await _entered(state, row, secret, form, now)
    if not isinstance(entered, Entered):
        return entered
    return await render.form_page(
        state,
        row,
        secret,
        200,
        amount=form.get("amount", "").strip(),
        chosen=form.get("method", ""),
        notice="Check the fee and the total, then confirm the withdrawal.",
    )


async def confirm(
    state: AppState, row: Row[Any], secret: str, form: dict[str, str], now: datetime
) -> Response:
    chosen = form.get("method", "")
    typed = form.get("amount", "").strip()
    entered = await _entered(state, row, secret, form, now)
    if not isinstance(entered, Entered):
        return entered
    amount, tenant = entered.amount, entered.tenant
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
            payment_option=entered.code,
            instrument_id=entered.instrument_id,
            reference=payout_reference(row.id),
            description="Withdrawal (hosted page)",
        )
    except ValueError:
        return await render.form_page(
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
            return await render.form_page(
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
            return await render.form_page(
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
    return render.html(
        "done.html",
        200,
        row.return_url,
        tenant.checkout_frame_ancestors,
        title="Withdrawal confirmed",
        amount=render.money(payout.amount, row.currency, row.locale),
        fee=render.money(payout.fee_total, row.currency, row.locale),
        total=render.money(payout.total, row.currency, row.locale),
        destination=shown.display if shown is not None else "your account",
        return_url=render.back(row, "completed"),
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
    return await render.form_page(
        state, row, secret, 422, error=message, amount=typed, chosen=chosen
    )
