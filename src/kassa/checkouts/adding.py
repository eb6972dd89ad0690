"""The hosted page's add-an-instrument forms: a bank account (IBAN) or a card, added by the
customer. Each goes through the instruments service as the API's does (checked, stored masked,
the whole number never kept), and is verified as it is added when the tenant's page settings
say ``added_instruments: verified`` (then it is offered at once); otherwise it is shown, not
offered, until the merchant verifies it.

A refused form is shown again with each field's error; the card number is never typed back
into the page, and no error message repeats it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi.responses import Response
from pydantic import ValidationError
from sqlalchemy.engine import Row

from kassa.auth import repository as auth_repository
from kassa.checkouts import render, repository, service
from kassa.instruments import service as instruments
from kassa.instruments.schemas import InstrumentOut, NewInstrument
from kassa.kit.errors import KassaError
from kassa.state import AppState

# What the page says of a refused field (the instruments service names the field and why).
IBAN_WORDS = {
    "holder_name": "Enter the account holder's name.",
    "iban": "Check the IBAN: it is not valid.",
}
CARD_WORDS = {
    "holder_name": "Enter the name on the card.",
    "card_number": "Check the card number: it is not valid.",
    "expiry_month": "Enter the expiry month, 1 to 12.",
    "expiry_year": "Enter the expiry year, such as 2030.",
}
CARD_EXPIRED = "This card has expired."


async def add_iban(
    state: AppState, row: Row[Any], secret: str, form: dict[str, str], now: datetime
) -> Response:
    holder = form.get("holder_name", "").strip()
    values = {"holder_name": holder}
    try:
        body = NewInstrument(type="SEPA_BANK_ACCOUNT", holder_name=holder, iban=form.get("iban"))
        made = await _store(state, row, body, now)
    except (KassaError, ValidationError) as error:
        errors = _errors(error, IBAN_WORDS)
        refused = render.Adding("iban", errors=errors, values=values)
        return await render.form_page(state, row, secret, 422, adding=refused)
    return await render.form_page(state, row, secret, 200, adding=_added("iban", made))


async def add_card(
    state: AppState, row: Row[Any], secret: str, form: dict[str, str], now: datetime
) -> Response:
    holder = form.get("holder_name", "").strip()
    month, year = form.get("expiry_month", "").strip(), form.get("expiry_year", "").strip()
    # Typed back on an error: the name and the expiry, never the number.
    values = {"holder_name": holder, "expiry_month": month, "expiry_year": year}
    try:
        body = NewInstrument(
            type="CARD",
            holder_name=holder,
            card_number=form.get("card_number", ""),
            expiry_month=_whole(month),
            expiry_year=_year(year),
        )
        made = await _store(state, row, body, now)
    except (KassaError, ValidationError) as error:
        errors = _errors(error, CARD_WORDS)
        refused = render.Adding("card", errors=errors, values=values)
        return await render.form_page(state, row, secret, 422, adding=refused)
    return await render.form_page(state, row, secret, 200, adding=_added("card", made))


async def _store(
    state: AppState, row: Row[Any], body: NewInstrument, now: datetime
) -> tuple[InstrumentOut, bool]:
    """The instrument made for the session's customer, verified at once if the tenant says
    so: one unit of work, so it is never seen unverified by a policy that verifies. One the
    customer has already (a form sent again, or the same account typed twice) is not added
    again: that one, and False. The session's row is held meanwhile, so two sends at once take
    turns and the second finds the first's."""
    async with state.db.write() as conn:
        await repository.lock_checkout(conn, row.id)
        tenant = await auth_repository.get_tenant(conn, row.tenant_id)
        made, added = await instruments.create_once(
            conn, row.tenant_id, row.customer_id, body, state.box, now
        )
        policy = service.page_settings(tenant).added_instruments
        if added and policy == "verified":
            made = await instruments.verify(conn, row.tenant_id, row.customer_id, made.id, now)
    return made, added


def _added(form: str, stored: tuple[InstrumentOut, bool]) -> render.Adding:
    made, added = stored
    if not added:
        usable = "you can choose it" if made.status == "verified" else "it awaits verification"
        said = f"{made.display} is added already: {usable}."
    elif made.status == "verified":
        said = f"Added {made.display}: you can choose it now."
    else:
        said = f"Added {made.display}: it can be used once it is verified."
    return render.Adding(form, added=said)


def _errors(error: KassaError | ValidationError, words: dict[str, str]) -> dict[str, str]:
    """Each refused field's message, in the page's words (never the value sent)."""
    if isinstance(error, ValidationError):
        refused = [(str(item["loc"][0]) if item["loc"] else "", "") for item in error.errors()]
    else:
        refused = [(item["field"], item["code"]) for item in error.errors or []]
    named: dict[str, str] = {}
    for name, code in refused:
        if name in words:
            named.setdefault(name, CARD_EXPIRED if code == "card_expired" else words[name])
    if not named:  # nothing the form has a field for: say so at its first field
        named[next(iter(words))] = "The details could not be added; check them and try again."
    return named


def _whole(text: str) -> int | None:
    """A number typed in the form; anything else is left for the service to refuse."""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 4 else None


def _year(text: str) -> int | None:
    """The expiry year as printed on cards (``30``) or whole (``2030``)."""
    year = _whole(text)
    return 2000 + year if year is not None and len(text) == 2 else year
