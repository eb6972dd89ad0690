"""Each tenant's payment options: which rail pays out what, within which limits, at what fee."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.money import MAX_MINOR_UNITS
from kassa.payouts import repository
from kassa.payouts.errors import PaymentOptionRefused, UnknownPaymentOption
from kassa.payouts.schemas import PaymentOption, PaymentOptions


async def get_options(conn: AsyncConnection, tenant_id: uuid.UUID) -> PaymentOptions:
    stored = await repository.stored_options(conn, tenant_id)
    if stored is None:
        return PaymentOptions()
    return PaymentOptions.model_validate(
        {"options": stored.options, "pending_ttl_seconds": stored.pending_ttl_seconds}
    )


async def put_options(
    conn: AsyncConnection, tenant_id: uuid.UUID, body: PaymentOptions, now: datetime
) -> PaymentOptions:
    values = {
        "options": [option.model_dump(mode="json") for option in body.options],
        "pending_ttl_seconds": body.pending_ttl_seconds,
        "updated_at": now,
    }
    await repository.store_options(conn, tenant_id, values)
    return await get_options(conn, tenant_id)


def find_option(options: PaymentOptions, code: str) -> PaymentOption:
    for option in options.options:
        if option.code == code:
            return option
    raise unknown_option(code)


def check_option(option: PaymentOption, currency: str, amount: int, instrument_type: str) -> None:
    """The option pays out this currency and amount to this type of instrument, or 422."""
    if currency not in option.currencies:
        raise currency_refused(option.code, currency)
    if not option.min_amount <= amount <= option.max_amount:
        raise amount_refused(option.code, option.min_amount, option.max_amount)
    if instrument_type not in option.instrument_types:
        raise instrument_refused(option.code, instrument_type)


# The refusals of options, in the same words from each engine.


def unknown_option(code: str) -> UnknownPaymentOption:
    return UnknownPaymentOption(f"the tenant has no payment option {code}")


def currency_refused(code: str, currency: str) -> PaymentOptionRefused:
    return PaymentOptionRefused(f"{code} does not pay out {currency}")


def amount_refused(code: str, min_amount: int, max_amount: int) -> PaymentOptionRefused:
    return PaymentOptionRefused(f"{code} pays out {min_amount} to {max_amount} minor units")


def instrument_refused(code: str, instrument_type: str) -> PaymentOptionRefused:
    return PaymentOptionRefused(f"{code} does not pay to a {instrument_type}")


def fee_for(option: PaymentOption, amount: int) -> int:
    """The option's fee on ``amount``; the two together must fit in 10^15 minor units."""
    fee = option.fee.fee(amount)
    if amount + fee > MAX_MINOR_UNITS:
        raise fee_too_large()
    return fee


def fee_too_large() -> PaymentOptionRefused:
    return PaymentOptionRefused("the amount and its fee are above 10^15 minor units")
