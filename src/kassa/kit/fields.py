"""Field types shared by request bodies: amounts, references, metadata, and the one rule for
text a client sends."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StringConstraints,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

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


# NUL and the surrogate code points, which only a lone surrogate can put in a str.
_UNSTORABLE = re.compile(r"[\x00\ud800-\udfff]")


@dataclass(frozen=True)
class TextRule:
    """What a text field must be for Kassa to store it, at every edge: ``/v1`` models carry it
    as ``Annotated`` metadata and the dialects' parsers call :meth:`check`.

    Only Unicode scalar values: JSON can escape a lone surrogate (``"\\ud800"``) and Python
    keeps it in a ``str``, but it has no UTF-8 form, so no database can store it. No NUL:
    PostgreSQL text cannot hold U+0000 (refused on SQLite too, so both backends agree). And a
    length in code points, as both backends count it.
    """

    min_length: int
    max_length: int

    def fault(self, value: str) -> tuple[str, str] | None:
        """The error code and message for ``value``, or None if it may be stored."""
        unstorable = _UNSTORABLE.search(value)
        if unstorable is not None and unstorable[0] == "\x00":
            return "invalid_character", "must not contain the NUL character"
        if unstorable is not None:
            return "string_unicode", "must be valid Unicode (it has a lone surrogate)"
        if len(value) < self.min_length:
            return "string_too_short", f"must have at least {self.min_length} character(s)"
        if len(value) > self.max_length:
            return "string_too_long", f"must have at most {self.max_length} characters"
        return None

    def check(self, value: object, field: str) -> str:
        """``value`` if it is a string this rule accepts; else ``ValidationFailed`` naming
        ``field`` (a dialect renders it in its own shape)."""
        if not isinstance(value, str):
            code, message = "string_type", "must be a string"
        else:
            fault = self.fault(value)
            if fault is None:
                return value
            code, message = fault
        raise ValidationFailed(
            f"{field} {message}", errors=[{"field": field, "code": code, "message": message}]
        )

    def _validate(self, value: str) -> str:
        fault = self.fault(value)
        if fault is not None:
            raise PydanticCustomError(*fault)
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        # A plain str schema (no constraints) keeps every string as it came, lone surrogates
        # included, so that this rule is the one that judges it.
        return core_schema.no_info_after_validator_function(self._validate, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        if self.min_length:
            json_schema["minLength"] = self.min_length
        json_schema["maxLength"] = self.max_length
        return json_schema


REFERENCE = TextRule(1, 255)
DESCRIPTION = TextRule(0, 1000)
TEXT255 = TextRule(1, 255)

Reference = Annotated[str, REFERENCE]
Description = Annotated[str, DESCRIPTION]
Text255 = Annotated[str, TEXT255]
MetadataKey = Annotated[str, TextRule(1, 40)]
MetadataValue = Annotated[str, TextRule(0, 500)]
Metadata = Annotated[
    dict[MetadataKey, MetadataValue],
    Field(max_length=50, description="up to 50 string keys (40 chars) with string values"),
]
