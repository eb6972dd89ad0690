"""Money at the edge: ISO 4217 exponents and exact conversions.

Inside Kassa an amount is an ``int`` of minor units plus a three-letter currency. This module is
the one place where text or JSON numbers become minor units and back. It never touches a float:
JSON must be parsed with ``parse_float=Decimal`` (or :class:`DecimalLiteral`, which keeps the
number's text), and anything that is not exact is refused, never rounded.

A decimal amount has one grammar wherever it enters, a dialect's string or JSON number alike:
ASCII digits, then at most one ``.`` followed by ASCII digits (``[0-9]+([.][0-9]+)?``). No
sign, exponent, underscore, separator, whitespace, ``NaN``/``Infinity`` or other digit set
(Arabic-Indic, full-width, Devanagari...): Python's ``Decimal()`` and ``int()`` take all of
those, so neither sees an amount before the grammar has. Zeros that do not change the value are
accepted (``10.000`` SAR is 10.00, ``007`` is 7); a digit the currency cannot hold (``10.001``
SAR) is refused. The native API's integers of minor units are JSON integers, whose grammar JSON
itself fixes (ASCII digits), and a minus sign is refused by the range check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Self

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


class DecimalLiteral(Decimal):
    """A JSON number that keeps the text the client wrote: ``json.loads(body,
    parse_float=DecimalLiteral)``. ``1E-2`` and ``0.01`` are the same ``Decimal``; the grammar
    refuses the first, so it must see the text. In every other way it is a ``Decimal``."""

    __slots__ = ("literal",)
    literal: str

    def __new__(cls, literal: str) -> Self:
        number = super().__new__(cls, literal)
        number.literal = literal
        return number


# [0-9], not \d or str.isdigit(): those match every digit set Unicode has.
_DECIMAL = re.compile(r"([0-9]+)(?:[.]([0-9]+))?")
_MAX_DIGITS = len(str(MAX_MINOR_UNITS))
NOT_A_DECIMAL = "must be a plain decimal number such as 10.50 (ASCII digits and at most one '.')"


def _decimal_text(value: object, field: str) -> str:
    """The text the grammar judges: a string as it is, a JSON number as it was written."""
    if isinstance(value, DecimalLiteral):
        return value.literal
    if isinstance(value, bool):
        raise _refuse("must be a number, not true or false", field)
    if isinstance(value, int | Decimal):
        # An int's text is its JSON literal. A Decimal that did not keep its literal is judged
        # by its canonical text, which shows the exponent when its value has one (1E+3).
        return str(value)
    if isinstance(value, str):
        return value
    raise _refuse(NOT_A_DECIMAL, field)


@dataclass(frozen=True)
class MajorAmount:
    """A decimal amount the grammar accepted, before a currency says what its digits are worth:
    the whole part without leading zeros and the fraction without trailing zeros (so ``10.000``
    is ``("10", "")``), both ASCII digits only."""

    whole: str
    fraction: str
    field: str = "amount"

    def minor_units(self, currency: str) -> int:
        """Exactly this many minor units of ``currency``, or refused: a digit the currency
        cannot hold is never rounded away."""
        exponent = currency_exponent(currency)
        if len(self.fraction) > exponent:
            raise _refuse(f"{currency} allows at most {exponent} decimal places", self.field)
        if len(self.whole) + exponent > _MAX_DIGITS:
            raise _refuse(f"must be at most {MAX_MINOR_UNITS} minor units", self.field)
        digits = self.whole + self.fraction.ljust(exponent, "0")  # ASCII digits, at most 16
        return check_minor_units(int(digits or "0"), self.field)


def parse_major(value: object, field: str = "amount") -> MajorAmount:
    """A major-unit amount (a decimal string or JSON number) checked against the one grammar;
    zero is refused here, since no currency makes it positive."""
    match = _DECIMAL.fullmatch(_decimal_text(value, field))
    if match is None:
        raise _refuse(NOT_A_DECIMAL, field)
    whole, fraction = match[1].lstrip("0"), (match[2] or "").rstrip("0")
    if not whole and not fraction:
        raise _refuse("must be greater than zero", field)
    return MajorAmount(whole, fraction, field)


def major_to_minor(value: object, currency: str, field: str = "amount") -> int:
    """Exact conversion of a major-unit amount to minor units of ``currency``.

    Accepts ``"10.5"``, ``"10.50"``, ``"10.500"``, ``10`` or a JSON number parsed as
    ``DecimalLiteral``/``Decimal``; refuses anything outside the grammar and more significant
    decimals than the currency has.
    """
    currency_exponent(currency)  # an unknown currency is the first thing wrong
    return parse_major(value, field).minor_units(currency)


def minor_to_major(amount: int, currency: str) -> Decimal:
    """Exact major-unit value of a minor-unit amount, with the currency's decimal places."""
    exponent = currency_exponent(currency)
    return Decimal(amount).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_major(amount: int, currency: str) -> str:
    return str(minor_to_major(amount, currency))
