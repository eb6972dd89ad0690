"""kassa.kit.money: ISO 4217 exponents and exact conversions, never a float, never rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kassa.kit.errors import InvalidAmount, ValidationFailed
from kassa.kit.money import (
    MAX_MINOR_UNITS,
    currency_exponent,
    format_major,
    is_currency,
    major_to_minor,
    minor_to_major,
    parse_minor_units,
)


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [
        ("JPY", 0),
        ("EUR", 2),
        ("SAR", 2),
        ("KWD", 3),
        ("BHD", 3),
        ("IQD", 3),
        ("LBP", 2),
        ("CLF", 4),
    ],
)
def test_currency_exponent_comes_from_iso_4217(currency: str, exponent: int) -> None:
    assert currency_exponent(currency) == exponent
    assert is_currency(currency)


@pytest.mark.parametrize("currency", ["XAU", "XXX", "ABC", "eur", "Eur", "EU", "EURO", ""])
def test_currency_exponent_refuses_unknown_and_non_monetary_codes(currency: str) -> None:
    with pytest.raises(ValidationFailed) as raised:
        currency_exponent(currency)
    assert [error["field"] for error in raised.value.errors] == ["currency"]
    assert not is_currency(currency)


@pytest.mark.parametrize("amount", [1, 1050, MAX_MINOR_UNITS])
def test_parse_minor_units_accepts_positive_integers_up_to_the_limit(amount: int) -> None:
    assert parse_minor_units(amount) == amount


@pytest.mark.parametrize(
    "value",
    [
        True,
        False,
        Decimal("10.5"),
        Decimal("1E+3"),
        Decimal("1000"),
        10.0,
        "100",
        None,
        0,
        -1,
        MAX_MINOR_UNITS + 1,
    ],
    ids=repr,
)
def test_parse_minor_units_refuses_anything_but_a_plain_positive_integer(value: object) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_minor_units(value, field="amount")
    assert [error["field"] for error in raised.value.errors] == ["amount"]


def test_parse_minor_units_names_the_field_it_refuses() -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_minor_units(0, field="fee")
    assert raised.value.errors[0]["field"] == "fee"


@pytest.mark.parametrize(
    ("value", "currency", "minor"),
    [
        ("10.50", "EUR", 1050),
        ("10.5", "EUR", 1050),
        ("10", "EUR", 1000),
        ("10.500", "EUR", 1050),
        (" 10.50 ", "EUR", 1050),
        ("0.01", "EUR", 1),
        (10, "EUR", 1000),
        (Decimal("0.1"), "EUR", 10),
        (Decimal("10.50"), "EUR", 1050),
        ("7", "JPY", 7),
        ("1.234", "KWD", 1234),
        ("0.0001", "CLF", 1),
        ("10000000000000", "EUR", MAX_MINOR_UNITS),
    ],
    ids=repr,
)
def test_major_to_minor_is_exact(value: object, currency: str, minor: int) -> None:
    converted = major_to_minor(value, currency)
    assert converted == minor
    assert type(converted) is int


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        ("10.505", "EUR"),
        ("1.5", "JPY"),
        ("1.2345", "KWD"),
        ("1e3", "EUR"),
        ("1E3", "EUR"),
        (Decimal("1E+3"), "EUR"),
        ("-5", "EUR"),
        (Decimal("-5"), "EUR"),
        ("+5", "EUR"),
        ("0", "EUR"),
        ("0.00", "EUR"),
        (0, "EUR"),
        ("NaN", "EUR"),
        (Decimal("NaN"), "EUR"),
        ("Infinity", "EUR"),
        (Decimal("Infinity"), "EUR"),
        ("", "EUR"),
        (" ", "EUR"),
        (".5", "EUR"),
        ("5.", "EUR"),
        ("1.2.3", "EUR"),
        ("1,000", "EUR"),
        ("1 000", "EUR"),
        ("0x10", "EUR"),
        (True, "EUR"),
        (False, "EUR"),
        (10.5, "EUR"),
        (10.0, "EUR"),
        (None, "EUR"),
        ("10000000000000.01", "EUR"),
        (10**13 + 1, "EUR"),
        (10**15 + 1, "JPY"),
    ],
    ids=repr,
)
def test_major_to_minor_refuses_what_is_not_exact(value: object, currency: str) -> None:
    with pytest.raises(InvalidAmount) as raised:
        major_to_minor(value, currency, field="amount")
    assert [error["field"] for error in raised.value.errors] == ["amount"]


def test_major_to_minor_refuses_an_unknown_currency_before_the_amount() -> None:
    with pytest.raises(ValidationFailed):
        major_to_minor("10.50", "XAU")


@pytest.mark.parametrize(
    ("minor", "currency", "major"),
    [
        (1050, "EUR", "10.50"),
        (1000, "EUR", "10.00"),
        (5, "EUR", "0.05"),
        (7, "JPY", "7"),
        (1234, "KWD", "1.234"),
        (1, "CLF", "0.0001"),
        (MAX_MINOR_UNITS, "EUR", "10000000000000.00"),
    ],
)
def test_minor_to_major_and_format_major_are_exact(minor: int, currency: str, major: str) -> None:
    value = minor_to_major(minor, currency)
    assert isinstance(value, Decimal)
    assert value == Decimal(major)
    assert str(value) == major
    assert format_major(minor, currency) == major


@pytest.mark.parametrize(
    ("minor", "currency"), [(1, "EUR"), (1050, "EUR"), (7, "JPY"), (1234, "KWD"), (99, "CLF")]
)
def test_major_and_minor_round_trip(minor: int, currency: str) -> None:
    assert major_to_minor(format_major(minor, currency), currency) == minor
