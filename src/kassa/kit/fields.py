"""Field types shared by request bodies: amounts, references, metadata."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

from kassa.kit.errors import InvalidAmount, ValidationFailed
from kassa.kit.money import MAX_MINOR_UNITS, currency_exponent, parse_minor_units


def _minor_units(value: Any) -> int:
    try:
        return parse_minor_units(value)
    except InvalidAmount as error:
        raise PydanticCustomError("invalid_amount", error.errors[0]["message"]) from None


def _currency(value: str) -> str:
    try:
        currency_exponent(value)
    except ValidationFailed as error:
        raise PydanticCustomError("invalid_currency", error.errors[0]["message"]) from None
    return value


MinorUnits = Annotated[
    int,
    BeforeValidator(_minor_units),
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_MINOR_UNITS,
            "description": "an integer of minor units (1050 is 10.50 EUR)",
        }
    ),
]
Currency = Annotated[
    str,
    StringConstraints(min_length=3, max_length=3),
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"}),
]


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refuse it on every backend alike.
    if "\x00" in value:
        raise PydanticCustomError("invalid_character", "must not contain the NUL character")
    return value


Reference = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_no_nul)]
Description = Annotated[str, StringConstraints(max_length=1000), AfterValidator(_no_nul)]
Text255 = Annotated[str, StringConstraints(min_length=1, max_length=255), AfterValidator(_no_nul)]
MetadataKey = Annotated[
    str, StringConstraints(min_length=1, max_length=40), AfterValidator(_no_nul)
]
MetadataValue = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(max_length=50, description="up to 50 string keys (40 chars) with string values"),
]
