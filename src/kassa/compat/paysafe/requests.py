"""The Paysafe dialect's request bodies, read strictly: every field the seed names, each in its
type; an unknown field, a float or a string where the seed has an integer, is refused with a
field error (``DW-INVALID-REQUEST``), never guessed at."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any, get_args

import orjson

from kassa.compat.paysafe.documents import HIDDEN
from kassa.instruments.schemas import InstrumentType, NewInstrument
from kassa.kit.errors import FieldError, KassaError, ValidationFailed
from kassa.kit.fields import REFERENCE, TextRule
from kassa.kit.http import loads
from kassa.kit.money import MAX_MINOR_UNITS, currency_exponent
from kassa.payouts.schemas import OptionCode

OPTIONS = frozenset(get_args(OptionCode))
INSTRUMENT_TYPES = frozenset(get_args(InstrumentType))
APP_TYPES = frozenset({"WEB_APP", "MOBILE_APP", "API"})
PROPERTY_KEYS = frozenset(
    {"CARD_CVV", "CARD_SAVE_INSTRUMENT", "SAVE_RECIPIENT", "PAYMENT_CONFIRMATION"}
)
CREATE_FIELDS = frozenset(
    {
        "amount",
        "currencyCode",
        "paymentOption",
        "paymentInstrumentReference",
        "merchantRefNum",
        "deviceInfo",
        "paymentProperties",
        "fees",
        "type",
        "description",
        "recipientReference",
    }
)
DESCRIPTION = TextRule(0, 50)
SHORT = TextRule(0, 100)
# What the dialect may move a withdrawal to (COMPLETED and FAILED need payouts:settle).
STATUSES = frozenset({"PENDING", "PROCESSING", "CANCELLED", "COMPLETED", "FAILED"})


def _one_of(value: object, choices: frozenset[str]) -> bool:
    """Whether ``value`` is one of ``choices`` (a JSON object or array never is)."""
    return isinstance(value, str) and value in choices


@dataclass
class Problems:
    errors: list[FieldError] = field(default_factory=list)

    def add(self, name: str, code: str, message: str) -> None:
        self.errors.append({"field": name, "code": code, "message": message})

    def text(self, value: object, name: str, rule: TextRule) -> str | None:
        try:
            return rule.check(value, name)
        except KassaError as error:
            self.errors.extend(error.errors)
            return None

    def raise_any(self) -> None:
        if self.errors:
            names = ", ".join(error["field"] for error in self.errors)
            raise ValidationFailed(f"invalid field(s): {names}", errors=self.errors)


@dataclass(frozen=True)
class NewWithdrawal:
    amount: int
    currency: str
    payment_option: str
    instrument_id: uuid.UUID
    instrument_type: str
    reference: str | None
    description: str | None
    metadata: dict[str, str]


def _object(raw: bytes) -> dict[str, Any]:
    document = loads(raw)
    if not isinstance(document, dict):
        raise ValidationFailed(
            "the body must be a JSON object",
            errors=[{"field": "body", "code": "object_type", "message": "must be an object"}],
        )
    return document


def _unknown(
    document: dict[str, Any], known: frozenset[str], problems: Problems, at: str = ""
) -> None:
    for name in sorted(set(document) - known):
        problems.add(f"{at}{name}", "unknown_field", "is not a field of this request")


def parse_create(raw: bytes) -> NewWithdrawal:
    document = _object(raw)
    problems = Problems()
    _unknown(document, CREATE_FIELDS, problems)
    for name in (
        "amount",
        "currencyCode",
        "paymentOption",
        "paymentInstrumentReference",
        "deviceInfo",
    ):
        if name not in document:
            problems.add(name, "missing", "is required")

    amount = document.get("amount")
    if "amount" in document and not (type(amount) is int and 0 < amount <= MAX_MINOR_UNITS):
        problems.add("amount", "invalid_amount", "must be an integer of minor units in 1..10^15")
    currency = document.get("currencyCode")
    if "currencyCode" in document:
        try:
            if not isinstance(currency, str) or len(currency) != 3 or not currency.isupper():
                raise ValueError(currency)
            currency_exponent(currency)
        except (ValueError, KassaError):
            problems.add("currencyCode", "invalid_currency", "must be an ISO 4217 code")
    option = document.get("paymentOption")
    if "paymentOption" in document and not _one_of(option, OPTIONS):
        problems.add("paymentOption", "invalid_payment_option", f"must be one of {sorted(OPTIONS)}")

    instrument_id, instrument_type = None, None
    reference_doc = document.get("paymentInstrumentReference")
    if "paymentInstrumentReference" in document:
        if not isinstance(reference_doc, dict):
            problems.add("paymentInstrumentReference", "object_type", "must be an object")
        else:
            _unknown(
                reference_doc,
                frozenset({"id", "instrumentType"}),
                problems,
                "paymentInstrumentReference.",
            )
            try:
                instrument_id = uuid.UUID(str(reference_doc.get("id")))
                if not isinstance(reference_doc.get("id"), str):
                    raise ValueError
            except ValueError:
                problems.add(
                    "paymentInstrumentReference.id", "invalid_id", "must be an instrument id"
                )
            instrument_type = reference_doc.get("instrumentType")
            if not _one_of(instrument_type, INSTRUMENT_TYPES):
                problems.add(
                    "paymentInstrumentReference.instrumentType",
                    "invalid_instrument_type",
                    f"must be one of {sorted(INSTRUMENT_TYPES)}",
                )

    reference = None
    if document.get("merchantRefNum") is not None:
        reference = problems.text(document["merchantRefNum"], "merchantRefNum", REFERENCE)
    description = None
    if document.get("description") is not None:
        description = problems.text(document["description"], "description", DESCRIPTION)
    if document.get("type", "FIRST_PARTY") != "FIRST_PARTY":
        problems.add("type", "not_supported", "only FIRST_PARTY withdrawals are supported")
    if document.get("recipientReference") is not None:
        problems.add(
            "recipientReference", "not_supported", "only FIRST_PARTY withdrawals are supported"
        )
    if document.get("fees") not in (None, []):
        problems.add("fees", "not_supported", "the fee is the tenant's payment option's fee rule")

    metadata: dict[str, str] = {}
    device = document.get("deviceInfo")
    if "deviceInfo" in document:
        kept = _device(device, problems)
        if kept is not None:
            metadata["paysafe_device_info"] = kept
    properties = document.get("paymentProperties")
    if properties is not None:
        kept = _properties(properties, problems)
        if kept is not None:
            metadata["paysafe_payment_properties"] = kept
    problems.raise_any()
    assert isinstance(amount, int)
    assert isinstance(currency, str)
    assert isinstance(option, str)
    assert instrument_id is not None
    assert isinstance(instrument_type, str)
    return NewWithdrawal(
        amount, currency, option, instrument_id, instrument_type, reference, description, metadata
    )


def _device(device: object, problems: Problems) -> str | None:
    """The device information, kept as given (appType checked; up to 5 other text members,
    such as the profiling session id and the customer's IP address)."""
    if not isinstance(device, dict):
        problems.add("deviceInfo", "object_type", "must be an object")
        return None
    if not _one_of(device.get("appType"), APP_TYPES):
        problems.add(
            "deviceInfo.appType", "invalid_app_type", f"must be one of {sorted(APP_TYPES)}"
        )
    if len(device) > 6:
        problems.add("deviceInfo", "too_many_members", "has more than 6 members")
        return None
    before = len(problems.errors)
    for name, value in device.items():
        if problems.text(name, "deviceInfo", TextRule(1, 40)) is None:
            return None
        if name != "appType":
            problems.text(value, f"deviceInfo.{name}", SHORT)
    return orjson.dumps(device).decode() if len(problems.errors) == before else None


def _properties(properties: object, problems: Problems) -> str | None:
    """The payment properties, kept; a CARD_CVV's value never is (PCI DSS)."""
    if not isinstance(properties, list) or len(properties) > 10:
        problems.add("paymentProperties", "array_type", "must be an array of at most 10")
        return None
    kept = []
    for index, item in enumerate(properties):
        at = f"paymentProperties[{index}]"
        if not isinstance(item, dict) or set(item) - {"key", "value"}:
            problems.add(at, "object_type", "must be an object of key and value")
            continue
        if not _one_of(item.get("key"), PROPERTY_KEYS):
            problems.add(f"{at}.key", "invalid_key", f"must be one of {sorted(PROPERTY_KEYS)}")
            continue
        value = problems.text(item.get("value"), f"{at}.value", SHORT)
        if value is not None:
            kept.append(
                {"key": item["key"], "value": HIDDEN if item["key"] == "CARD_CVV" else value}
            )
    return orjson.dumps(kept).decode()


@dataclass(frozen=True)
class StatusRequest:
    status: str
    reason: str | None
    sca_event: uuid.UUID | None


def parse_status(raw: bytes) -> StatusRequest:
    document = _object(raw)
    problems = Problems()
    _unknown(
        document, frozenset({"status", "statusReason", "scaDetails", "paymentProperties"}), problems
    )
    status = document.get("status")
    if not _one_of(status, STATUSES):
        problems.add("status", "invalid_status", f"must be one of {sorted(STATUSES)}")
    reason = None
    if document.get("statusReason") is not None:
        reason = problems.text(document["statusReason"], "statusReason", TextRule(1, 60))
    event = None
    details = document.get("scaDetails")
    if details is not None:
        if not isinstance(details, dict):
            problems.add("scaDetails", "object_type", "must be an object")
        else:
            try:
                event = uuid.UUID(str(details.get("eventId")))
            except ValueError:
                problems.add("scaDetails.eventId", "invalid_id", "must be an SCA event id")
    if document.get("paymentProperties") is not None:
        _properties(document["paymentProperties"], problems)
    problems.raise_any()
    assert isinstance(status, str)
    return StatusRequest(status, reason, event)


# Paysafe's instrument fields and Kassa's.
_INSTRUMENT_NAMES = {
    "iban": "iban",
    "bic": "bic",
    "accountNumber": "account_number",
    "routingNumber": "routing_number",
    "sortCode": "sort_code",
    "cci": "cci",
    "pan": "card_number",
}


def parse_instrument(raw: bytes) -> NewInstrument:
    """A new instrument with Paysafe's field names (``instrumentType``, ``accountHolderName``
    or ``cardHolderName``, ``iban``, ``bic``, ``accountNumber``, ``routingNumber``,
    ``accountType``, ``sortCode``, ``cci``, ``pan``, ``expiryDate {year, month}``), as Kassa's."""
    document = _object(raw)
    problems = Problems()
    known = {
        "instrumentType",
        "accountHolderName",
        "cardHolderName",
        "accountType",
        "expiryDate",
        *_INSTRUMENT_NAMES,
    }
    _unknown(document, frozenset(known), problems)
    problems.raise_any()
    body: dict[str, Any] = {
        "type": document.get("instrumentType"),
        "holder_name": document.get("accountHolderName") or document.get("cardHolderName"),
    }
    for theirs, ours in _INSTRUMENT_NAMES.items():
        if theirs in document:
            body[ours] = document[theirs]
    if "accountType" in document:
        body["account_type"] = str(document["accountType"]).lower()
    expiry = document.get("expiryDate")
    if expiry is not None:
        if not isinstance(expiry, dict) or set(expiry) - {"year", "month"}:
            raise ValidationFailed(
                "expiryDate must be {year, month}",
                errors=[
                    {
                        "field": "expiryDate",
                        "code": "object_type",
                        "message": "must be {year, month}",
                    }
                ],
            )
        body["expiry_year"], body["expiry_month"] = expiry.get("year"), expiry.get("month")
    from kassa.kit.http import validate

    return validate(NewInstrument, body)
