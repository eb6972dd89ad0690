"""Checking bank account and card numbers, and masking them: what leaves here is only the
masked display, the last four digits and details that are not secret.

IBANs are checked with ISO 7064 mod 97-10 and the country's format, cards with Luhn, US routing
numbers with the ABA checksum (all through ``python-stdnum``); UK sort codes and account numbers
and Peruvian CCIs are checked for their shape only (modulus checks of UK accounts need the
banks' tables; the CCI's check digits are not verified).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stdnum import iban as iban_number
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.us import rtn

from kassa.kit.errors import FieldError, ValidationFailed

INSTRUMENT_TYPES = (
    "SEPA_BANK_ACCOUNT",
    "UK_BANK_ACCOUNT",
    "US_BANK_ACCOUNT",
    "CCI_BANK_ACCOUNT",
    "CARD",
)
DOT = "\u2022"  # the masking character


@dataclass(frozen=True)
class Masked:
    display: str
    last4: str
    details: dict[str, Any] = field(default_factory=dict)
    # The whole number in one canonical form, for the fingerprint only: never stored or logged.
    identity: str = field(default="", repr=False)


def _digits(value: object, name: str, errors: list[FieldError]) -> str:
    if not isinstance(value, str) or not value.strip():
        errors.append({"field": name, "code": "required", "message": "is required"})
        return ""
    compact = re.sub(r"[\s-]", "", value)
    if not compact.isdigit():
        errors.append({"field": name, "code": "invalid", "message": "must be digits only"})
        return ""
    return compact


def _refuse(errors: list[FieldError]) -> None:
    if errors:
        raise ValidationFailed("the payment instrument is not valid", errors=errors)


def mask(fields: dict[str, Any], type_: str, now: datetime) -> Masked:
    """Validate the sensitive fields of an instrument of ``type_`` and mask them."""
    errors: list[FieldError] = []
    if type_ == "SEPA_BANK_ACCOUNT":
        raw = fields.get("iban")
        compact = re.sub(r"\s", "", raw).upper() if isinstance(raw, str) else ""
        try:
            iban_number.validate(compact)
        except StdnumError:
            errors.append(
                {"field": "iban", "code": "invalid_iban", "message": "is not a valid IBAN"}
            )
        _refuse(errors)
        details: dict[str, Any] = {"country": compact[:2]}
        bic = fields.get("bic")
        if isinstance(bic, str) and bic:
            details["bic"] = bic.upper()
        display = f"{compact[:4]} {DOT * 4} {compact[-4:]}"
        return Masked(display, compact[-4:], details, f"IBAN:{compact}")
    if type_ == "UK_BANK_ACCOUNT":
        sort_code = _digits(fields.get("sort_code"), "sort_code", errors)
        account = _digits(fields.get("account_number"), "account_number", errors)
        if sort_code and len(sort_code) != 6:
            errors.append({"field": "sort_code", "code": "invalid", "message": "must be 6 digits"})
        if account and len(account) != 8:
            errors.append(
                {"field": "account_number", "code": "invalid", "message": "must be 8 digits"}
            )
        _refuse(errors)
        code = f"{sort_code[:2]}-{sort_code[2:4]}-{sort_code[4:]}"
        display = f"{code} {DOT * 4}{account[-4:]}"
        return Masked(display, account[-4:], {"sort_code": code}, f"UK:{sort_code}:{account}")
    if type_ == "US_BANK_ACCOUNT":
        routing = _digits(fields.get("routing_number"), "routing_number", errors)
        account = _digits(fields.get("account_number"), "account_number", errors)
        if routing and not rtn.is_valid(routing):
            errors.append(
                {"field": "routing_number", "code": "invalid", "message": "fails the ABA checksum"}
            )
        if account and not 4 <= len(account) <= 17:
            errors.append(
                {"field": "account_number", "code": "invalid", "message": "must be 4 to 17 digits"}
            )
        _refuse(errors)
        kind = fields.get("account_type") or "checking"
        if kind not in ("checking", "savings"):
            _refuse(
                [{"field": "account_type", "code": "invalid", "message": "checking or savings"}]
            )
        details = {"routing_number": routing, "account_type": kind}
        display = f"{routing} {DOT * 4}{account[-4:]}"
        return Masked(display, account[-4:], details, f"US:{routing}:{account}")
    if type_ == "CCI_BANK_ACCOUNT":
        cci = _digits(fields.get("cci"), "cci", errors)
        if cci and len(cci) != 20:
            errors.append({"field": "cci", "code": "invalid", "message": "must be 20 digits"})
        _refuse(errors)
        display = f"{cci[:3]} {DOT * 4}{cci[-4:]}"
        return Masked(display, cci[-4:], {"bank_code": cci[:3]}, f"CCI:{cci}")
    if type_ == "CARD":
        number = _digits(fields.get("card_number"), "card_number", errors)
        if number and (not 12 <= len(number) <= 19 or not luhn.is_valid(number)):
            errors.append(
                {"field": "card_number", "code": "invalid_card_number", "message": "is not valid"}
            )
        month, year = fields.get("expiry_month"), fields.get("expiry_year")
        if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
            errors.append({"field": "expiry_month", "code": "invalid", "message": "1 to 12"})
        elif not isinstance(year, int) or isinstance(year, bool) or not 2000 <= year <= 2100:
            errors.append({"field": "expiry_year", "code": "invalid", "message": "a year"})
        elif (year, month) < (now.year, now.month):
            errors.append({"field": "expiry_year", "code": "card_expired", "message": "expired"})
        _refuse(errors)
        brand = _brand(number)
        card = {"brand": brand, "expiry_month": month, "expiry_year": year}
        return Masked(f"{brand} {DOT * 4} {number[-4:]}", number[-4:], card, f"CARD:{number}")
    raise ValidationFailed(
        errors=[{"field": "type", "code": "invalid", "message": " | ".join(INSTRUMENT_TYPES)}]
    )


def _brand(number: str) -> str:
    if number.startswith("4"):
        return "VISA"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4]) <= 2720:
        return "MASTERCARD"
    if number[:2] in {"34", "37"}:
        return "AMEX"
    return "CARD"
