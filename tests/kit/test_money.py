"""kassa.kit.money: ISO 4217 exponents and exact conversions, never a float, never rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kassa.kit.errors import InvalidAmount, ValidationFailed
from kassa.kit.money import (
    MAX_MINOR_UNITS,
    DecimalLiteral,
    MajorAmount,
    currency_exponent,
    format_major,
    is_currency,
    major_to_minor,
    minor_to_major,
    parse_major,
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
        ("10.000", "SAR", 1000),
        ("0.5000000000", "EUR", 50),
        ("0010.50", "EUR", 1050),
        ("0.01", "EUR", 1),
        (10, "EUR", 1000),
        (Decimal("0.1"), "EUR", 10),
        (Decimal("10.50"), "EUR", 1050),
        (DecimalLiteral("10.000"), "SAR", 1000),
        (DecimalLiteral("0.01"), "EUR", 1),
        ("10000000000000.00", "EUR", MAX_MINOR_UNITS),
        ("1000000000000.000", "KWD", MAX_MINOR_UNITS),
        ("1000000000000000", "JPY", MAX_MINOR_UNITS),
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
        (" 10.50 ", "EUR"),
        ("10\n", "EUR"),
        (".5", "EUR"),
        ("5.", "EUR"),
        ("1.2.3", "EUR"),
        ("1,000", "EUR"),
        ("1 000", "EUR"),
        ("1_000", "EUR"),
        ("0x10", "EUR"),
        ("\u0661\u0662\u0663", "SAR"),
        ("\uff11\uff12\uff13", "SAR"),
        ("\u0967\u0968\u0969", "SAR"),
        (DecimalLiteral("1E-2"), "EUR"),
        (DecimalLiteral("1.5e1"), "EUR"),
        (DecimalLiteral("-5.0"), "EUR"),
        (DecimalLiteral("10.001"), "SAR"),
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


# The one grammar for a decimal amount, on text: ASCII digits, at most one '.' between digits.
# Each accepted text with its whole digits (no leading zeros) and significant fraction digits.
GRAMMAR_ACCEPTS = [
    ("10", "10", ""),
    ("10.5", "10", "5"),
    ("10.50", "10", "5"),
    ("10.000", "10", ""),
    ("0.01", "", "01"),
    ("007", "7", ""),
    ("0010.50", "10", "5"),
    ("1.0000000000000000000000000000000000001", "1", "0000000000000000000000000000000000001"),
    ("9" * 40, "9" * 40, ""),
]
GRAMMAR_REFUSES = [
    "",
    ".",
    ".5",
    "5.",
    "1..5",
    "1.2.3",
    "-5",
    "+5",
    "-0",
    "\u22125",  # minus sign
    "1e3",
    "1E3",
    "1e-2",
    "1E+3",
    "1_000",
    "1_000.00",
    "10.5_0",
    "1,000",
    "1,5",
    " 10",
    "10 ",
    "1 000",
    "\t10",
    "10\n",
    "\u00a010",  # no-break space
    "1\u202f000",  # narrow no-break space
    "\u0661\u0662\u0663",  # Arabic-Indic
    "\u06f1\u06f2\u06f3",  # extended Arabic-Indic (Persian)
    "\uff11\uff12\uff13",  # full-width
    "\u0967\u0968\u0969",  # Devanagari
    "\u09e7\u09e8\u09e9",  # Bengali
    "\u0e51\u0e52\u0e53",  # Thai
    "\U0001d7cf\U0001d7d0",  # mathematical bold
    "1\u06623",  # mixed digit sets
    "12.\u0665\u0660",  # foreign decimals
    "12\uff0e50",  # full-width full stop
    "\u00b2",  # superscript two: str.isdigit() says yes
    "NaN",
    "nan",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "0x10",
    "0b1",
    "ten",
    "10 SAR",
    "$10",
]
GRAMMAR_ZERO = ["0", "0.00", "000", "0.0000000"]


@pytest.mark.parametrize(("text", "whole", "fraction"), GRAMMAR_ACCEPTS, ids=repr)
def test_the_grammar_accepts_plain_decimals(text: str, whole: str, fraction: str) -> None:
    assert parse_major(text) == MajorAmount(whole, fraction)


@pytest.mark.parametrize("text", GRAMMAR_REFUSES, ids=ascii)
def test_the_grammar_refuses_everything_else(text: str) -> None:
    with pytest.raises(InvalidAmount) as raised:
        parse_major(text, field="Amount")
    assert raised.value.errors == [
        {"field": "Amount", "code": "invalid_amount", "message": raised.value.errors[0]["message"]}
    ]
    assert "plain decimal" in raised.value.errors[0]["message"]


@pytest.mark.parametrize("text", GRAMMAR_ZERO)
def test_the_grammar_refuses_zero_whatever_its_decimals(text: str) -> None:
    with pytest.raises(InvalidAmount, match="greater than zero"):
        parse_major(text)


def decimal_reads(text: str) -> bool:
    try:
        Decimal(text)
    except ArithmeticError:
        return False
    return True


DECIMAL_READS = [text for text in GRAMMAR_REFUSES if decimal_reads(text)]


def test_python_decimal_reads_many_texts_the_grammar_refuses() -> None:
    """Why the grammar runs first: Decimal() reads foreign digits, underscores, signs,
    exponents, surrounding whitespace and NaN/Infinity, each as some number."""
    assert Decimal("\u0661\u0662\u0663") == Decimal("\uff11\uff12\uff13") == 123
    assert Decimal("1_000") == 1000
    assert {"\u0661\u0662\u0663", "1_000", " 10", "-5", "1e3", "NaN"} <= set(DECIMAL_READS)


@pytest.mark.parametrize("text", DECIMAL_READS, ids=ascii)
def test_a_json_number_is_judged_by_the_text_it_was_written_in(text: str) -> None:
    """The same grammar for a number's literal, as json.loads hands it to parse_float."""
    with pytest.raises(InvalidAmount):
        parse_major(DecimalLiteral(text))


def test_the_whole_part_is_never_converted_when_it_is_too_long() -> None:
    """int() of a long digit string is refused by Python (4300 digits) and slow before that:
    the length alone says it is too large."""
    with pytest.raises(InvalidAmount, match="at most"):
        major_to_minor("9" * 100_000, "EUR")


def test_decimal_literal_is_a_decimal_that_keeps_its_text() -> None:
    number = DecimalLiteral("1E-2")
    assert isinstance(number, Decimal)
    assert number == Decimal("0.01")
    assert number.literal == "1E-2"
    assert number + 1 == Decimal("1.01")
