"""The hosted page's rendering: its templates, its security headers, money in the
session's locale, and the form, closed and invalid-link pages."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.engine import Row

from kassa.auth import repository as auth_repository
from kassa.checkouts import service
from kassa.instruments import service as instruments
from kassa.kit.errors import KassaError
from kassa.kit.money import currency_exponent, major_to_minor, minor_to_major
from kassa.payouts import options
from kassa.payouts.schemas import FeeRule, PaymentOptions
from kassa.state import AppState
from kassa.wallets import service as wallets

templates = Environment(
    loader=PackageLoader("kassa.checkouts", "templates"),
    autoescape=select_autoescape(["html"]),
)
OPTION_LABELS = {
    "BANK_TRANSFER": "Bank transfer",
    "CARD": "Card",
    "RAPID_TRANSFER": "Rapid transfer",
    "PAYSAFECASH": "Paysafecash",
    "PAGO_EFECTIVO": "PagoEfectivo",
}


@dataclass(frozen=True)
class Adding:
    """One of the add-an-instrument forms after its submit: which one (``iban`` or ``card``),
    what was added, each field's error, and the fields typed back. A card number or IBAN is
    never typed back."""

    form: str
    added: str | None = None
    errors: dict[str, str] = field(default_factory=dict)
    values: dict[str, str] = field(default_factory=dict)


def headers(return_url: str | None, frame_ancestors: list[str] | None = None) -> dict[str, str]:
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


def html(
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
    return HTMLResponse(body, status_code=status, headers=headers(target, frame_ancestors))


def invalid() -> HTMLResponse:
    return html(
        "closed.html",
        404,
        title="Link not valid",
        heading="This link is not valid",
        message="Ask the merchant for a new withdrawal link.",
    )


def money(amount: int, currency: str, locale: str) -> str:
    try:
        Locale.parse(locale)
    except (UnknownLocaleError, ValueError):
        locale = "en"
    return format_currency(minor_to_major(amount, currency), currency, locale=locale)


def back(row: Row[Any], status: str) -> str:
    parts = urlsplit(row.return_url)
    query = [*parse_qsl(parts.query), ("checkout_id", str(row.id)), ("status", status)]
    return str(parts._replace(query=urlencode(query)).geturl())


def closed(row: Row[Any], now: datetime, merchant: str) -> HTMLResponse | None:
    status = service.shown(row, now).status
    if status == "open":
        return None
    words = {
        "completed": ("Withdrawal done", "This withdrawal has been confirmed already."),
        "cancelled": ("Withdrawal cancelled", "This withdrawal was cancelled."),
        "expired": ("Link expired", "This withdrawal link has expired."),
    }[status]
    return html(
        "closed.html",
        410,
        row.return_url,
        title=words[0],
        heading=words[0],
        message=words[1],
        return_url=back(row, status),
        merchant=merchant,
        experience=row.experience,
        lang=row.locale.split("_")[0],
    )


async def form_page(
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
    notice: str | None = None,
    adding: Adding | None = None,
) -> HTMLResponse:
    now = state.clock.now()
    async with state.db.read() as conn:
        tenant = await auth_repository.get_tenant(conn, row.tenant_id)
        wallet = await wallets.get_wallet(conn, row.tenant_id, row.wallet_id, now)
        tenant_options = await options.get_options(conn, row.tenant_id)
        owned = await instruments.list_instruments(conn, row.tenant_id, row.customer_id, 100)
    limit = limit_of(row, wallet.available_balance)
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
                    "fee_shown": fee_text(option.fee, row.currency, row.locale),
                }
            )
    waiting = [item.display for item in owned.data if item.status != "verified"]
    exponent = currency_exponent(row.currency)
    fee_shown, total_shown = fee_and_total(tenant_options, row, amount, chosen)
    return html(
        "page.html",
        status,
        row.return_url,
        tenant.checkout_frame_ancestors if tenant is not None else None,
        title="Withdraw money",
        action=f"/checkout/{row.id}/{secret}",
        csrf=service.csrf_token(secret),
        currency=row.currency,
        exponent=exponent,
        limit_shown=money(limit, row.currency, row.locale),
        fixed=row.fixed_amount is not None,
        fixed_shown=money(row.fixed_amount or 0, row.currency, row.locale),
        fixed_major=str(minor_to_major(row.fixed_amount or 0, row.currency)),
        methods=groups,
        error=error,
        amount_error=amount_error,
        amount=amount,
        chosen=chosen,
        fee_shown=fee_shown,
        total_shown=total_shown,
        sca_event=sca_event,
        notice=notice,
        waiting=waiting,
        iban=adding if adding is not None and adding.form == "iban" else Adding("iban"),
        card=adding if adding is not None and adding.form == "card" else Adding("card"),
        merchant=tenant.name if tenant is not None else "the merchant",
        experience=row.experience,
        lang=row.locale.split("_")[0],
    )


def limit_of(row: Row[Any], available: int) -> int:
    if row.fixed_amount is not None:
        return int(row.fixed_amount)
    cap = available if row.max_amount is None else min(int(row.max_amount), available)
    return max(cap, 0)


def fee_and_total(
    tenant_options: PaymentOptions, row: Row[Any], typed: str, chosen: str
) -> tuple[str, str]:
    """The fee and total of the amount typed (or the session's fixed one) paid out by the
    method chosen, by the payout's own fee code; ``-`` while either is missing or refused."""
    try:
        amount = (
            int(row.fixed_amount)
            if row.fixed_amount is not None
            else major_to_minor(typed.strip(), row.currency)
        )
        option = options.find_option(tenant_options, chosen.partition(":")[0])
        fee = options.fee_for(option, amount)
    except KassaError:
        return "-", "-"
    if amount <= 0:
        return "-", "-"
    return money(fee, row.currency, row.locale), money(amount + fee, row.currency, row.locale)


def fee_text(fee: FeeRule, currency: str, locale: str) -> str:
    parts = []
    if fee.fixed:
        parts.append(money(fee.fixed, currency, locale))
    if fee.bps:
        parts.append(f"{Decimal(fee.bps) / 100:g} %")
    return " + ".join(parts) or "none"
