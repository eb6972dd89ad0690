"""Money at the edge: ISO 4217 exponents and exact conversions.

Inside Kassa an amount is an ``int`` of minor units plus a three-letter currency. This module is
the one place where text or JSON numbers become minor units and back. It never touches a float:
JSON must be parsed with ``parse_float=Decimal``, and anything that is not exact is refused,
never rounded.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import cache

import iso4217

from kassa.kit.errors import InvalidAmount, ValidationFailed

MAX_MINOR_UNITS = 10**15


@cache
def currency_exponent(currency: str) -> int:
    """Number of decimals of an ISO 4217 currency; unknown or non-monetary codes are refused."""
    try:
        exponent = iso4217.Currency(currency).exponent
    except ValueError:
        exponent = None
    if exponent is None or len(currency) != 3 or not currency.isupper():
        raise ValidationFailed(
            f"{currency!r} is not an ISO 4217 currency code Kassa can hold",
            errors=[
                {
                    "field": "currency",
                    "code": "invalid_currency",
                    "message": "must be an ISO 4217 currency code such as EUR or SAR",
                }
            ],
        )
    return int(exponent)


def is_currency(currency: str) -> bool:
    try:
        currency_exponent(currency)
    except ValidationFailed:
        return False
    return True


def _refuse(message: str, field: str) -> InvalidAmount:
    return InvalidAmount(
        message, errors=[{"field": field, "code": "invalid_amount", "message": message}]
    )


def check_minor_units(amount: int, field: str = "amount") -> int:
    if amount <= 0:
        raise _refuse("must be greater than zero", field)
    if amount > MAX_MINOR_UNITS:
        raise _refuse(f"must be at most {MAX_MINOR_UNITS} minor units", field)
    return amount


def parse_minor_units(value: object, field: str = "amount") -> int:
    """A native-API amount: a JSON integer of minor units, 0 < amount <= 10^15.

    Fractions, exponents (``1e3``), strings, booleans and non-finite numbers are refused: the
    native API speaks minor units, so anything but a plain integer is a client mistake.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise _refuse("must be an integer number of minor units, such as 1050 for 10.50", field)
    return check_minor_units(value, field)


def major_to_minor(value: object, currency: str, field: str = "amount") -> int:
    """Exact conversion of a major-unit amount (decimal string or JSON number) to minor units.

    Accepts ``"10.5"``, ``"10.50"``, ``10`` or a ``Decimal`` parsed from JSON; refuses more
    decimals than the currency has, exponent notation, signs, NaN and Infinity.
    """
    exponent = currency_exponent(currency)
    if isinstance(value, bool):
        raise _refuse("must be a number", field)
    if isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise _refuse("must be a decimal number", field)
    if not text or any(ch not in "0123456789." for ch in text) or text.count(".") > 1:
        raise _refuse("must be a plain decimal number such as 10.50", field)
    if text.startswith(".") or text.endswith("."):
        raise _refuse("must be a plain decimal number such as 10.50", field)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _refuse("must be a plain decimal number such as 10.50", field) from None
    _, _, decimals = text.partition(".")
    if len(decimals.rstrip("0")) > exponent:
        raise _refuse(f"{currency} allows at most {exponent} decimal places", field)
    minor = number.scaleb(exponent)
    if minor != minor.to_integral_value():
        raise _refuse(f"{currency} allows at most {exponent} decimal places", field)
    return check_minor_units(int(minor), field)


def minor_to_major(amount: int, currency: str) -> Decimal:
    """Exact major-unit value of a minor-unit amount, with the currency's decimal places."""
    exponent = currency_exponent(currency)
    return Decimal(amount).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_major(amount: int, currency: str) -> str:
    return str(minor_to_major(amount, currency))
