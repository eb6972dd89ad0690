"""What the Paysafe dialect's operations declare in ``/openapi.json``: Paysafe's schemas, an
example of each answer, and each refusal in Paysafe's error shape."""

from __future__ import annotations

import json
from typing import Any

from fastapi.responses import Response

from kassa.compat.paysafe.openapi_schemas import (
    ERROR_EXAMPLE,
    INSTRUMENT_TYPES,
    INTEGER,
    REF,
    SCHEMAS,
    STRING,
    WITHDRAWAL_EXAMPLE,
)
from kassa.kit.openapi import EXAMPLE_JSON, UNAVAILABLE

_BEARER: list[dict[str, list[str]]] = [{"HTTPBearer": []}]

_REFUSALS = {
    400: "invalid request (`DW-INVALID-REQUEST` with fieldErrors; `DW-INVALID-WITHDRAW-ACCOUNT`,"
    " `DW-TRANSFER-NOT-ENOUGH-BALANCE`, `DW-TRANSFER-INVALID-CURRENCY`, …)",
    401: "no token, or an unknown, expired or revoked one (`DW-UNAUTHORIZED`)",
    403: "the token does not allow this (`DW-FORBIDDEN`)",
    404: "no such customer, withdrawal or instrument for this token (`DW-RESOURCE-NOT-FOUND`)",
    405: "the payment option is not offered, or refuses this withdrawal"
    " (`DW-OPERATION-NOT-ALLOWED`)",
    409: "the merchantRefNum was used (`DW-TRANSFER-DUPLICATED-MERCHANT-REF`), a request with"
    " this Idempotency-Key is in flight, or the SCA state forbids it",
    413: "the body is over 64 KiB",
}


def _media(schema: str, example: Any) -> dict[str, Any]:
    return {"schema": {"$ref": f"{REF}{schema}"}, EXAMPLE_JSON: json.dumps(example)}


def _operation(
    summary: str,
    status: int,
    schema: str,
    example: Any,
    refusals: tuple[int, ...],
    *,
    body: dict[str, Any] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    security: list[dict[str, list[str]]] = _BEARER,
    error_schema: str = "PaysafeError",
    error_example: Any = ERROR_EXAMPLE,
) -> dict[str, Any]:
    responses: dict[int | str, dict[str, Any]] = {
        status: {"description": "success", "content": {"application/json": _media(schema, example)}}
    }
    for code in (*refusals, 503):
        why = UNAVAILABLE if code == 503 else _REFUSALS.get(code, "refused")
        responses[code] = {
            "description": why,
            "content": {"application/json": _media(error_schema, error_example)},
        }
    extra: dict[str, Any] = {"security": security, "x-components": {"schemas": SCHEMAS}}
    if body is not None:
        extra["requestBody"] = {"required": True, "content": {"application/json": body}}
    if parameters:
        extra["parameters"] = parameters
    return {
        "summary": summary,
        "status_code": status,
        "response_class": Response,
        "responses": responses,
        "openapi_extra": extra,
    }


_CREATE_BODY = {
    "schema": {
        "type": "object",
        "required": [
            "amount",
            "currencyCode",
            "paymentOption",
            "paymentInstrumentReference",
            "deviceInfo",
        ],
        "properties": {
            "amount": {
                "type": "integer",
                "minimum": 1,
                "maximum": 10**15,
                "description": "minor units",
            },
            "currencyCode": {"type": "string", "pattern": "^[A-Z]{3}$"},
            "paymentOption": {
                "enum": ["RAPID_TRANSFER", "BANK_TRANSFER", "CARD", "PAYSAFECASH", "PAGO_EFECTIVO"]
            },
            "paymentInstrumentReference": {
                "type": "object",
                "required": ["id", "instrumentType"],
                "properties": {
                    "id": {"type": "string", "format": "uuid"},
                    "instrumentType": {"enum": INSTRUMENT_TYPES},
                },
                "additionalProperties": False,
            },
            "merchantRefNum": {"type": "string", "minLength": 1, "maxLength": 255},
            "deviceInfo": {
                "type": "object",
                "required": ["appType"],
                "properties": {"appType": {"enum": ["WEB_APP", "MOBILE_APP", "API"]}},
                "additionalProperties": {"type": "string", "maxLength": 100},
            },
            "paymentProperties": {"type": "array", "maxItems": 10, "items": {"type": "object"}},
            "type": {"const": "FIRST_PARTY"},
            "description": {"type": "string", "maxLength": 50},
        },
        "additionalProperties": False,
    },
    EXAMPLE_JSON: json.dumps(
        {
            "amount": 1000,
            "currencyCode": "EUR",
            "paymentOption": "BANK_TRANSFER",
            "paymentInstrumentReference": {
                "id": "6f1d3a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
                "instrumentType": "SEPA_BANK_ACCOUNT",
            },
            "merchantRefNum": "4bc2deb3-9766-4598-a08e-a98b60615936",
            "deviceInfo": {"appType": "WEB_APP"},
        }
    ),
}
_STATUS_BODY = {
    "schema": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"enum": ["PENDING", "PROCESSING", "CANCELLED", "COMPLETED", "FAILED"]},
            "statusReason": {"type": "string", "minLength": 1, "maxLength": 60},
            "scaDetails": {"type": "object", "properties": {"eventId": {"type": "string"}}},
        },
        "additionalProperties": False,
    },
    EXAMPLE_JSON: json.dumps({"status": "PENDING"}),
}
_INSTRUMENT_BODY = {
    "schema": {
        "type": "object",
        "required": ["instrumentType"],
        "properties": {
            "instrumentType": {"enum": INSTRUMENT_TYPES},
            "accountHolderName": STRING,
            "cardHolderName": STRING,
            "iban": STRING,
            "bic": STRING,
            "accountNumber": STRING,
            "routingNumber": STRING,
            "accountType": {"enum": ["CHECKING", "SAVINGS"]},
            "sortCode": STRING,
            "cci": STRING,
            "pan": STRING,
            "expiryDate": {
                "type": "object",
                "properties": {"year": INTEGER, "month": INTEGER},
            },
        },
        "additionalProperties": False,
    },
    EXAMPLE_JSON: json.dumps(
        {
            "instrumentType": "SEPA_BANK_ACCOUNT",
            "accountHolderName": "Ada Lovelace",
            "iban": "DE89370400440532013000",
        }
    ),
}
_LIST_PARAMETERS = [
    {
        "name": "merchantRefNum",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "maxLength": 255},
    },
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 50, "default": 10},
    },
    {
        "name": "offset",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 0, "maximum": 10_000, "default": 0},
    },
]
_LIST_EXAMPLE = {
    "withdrawals": [WITHDRAWAL_EXAMPLE],
    "meta": {"numberOfRecords": 1, "limit": 10, "offset": 0, "page": 1},
}
_INSTRUMENT_EXAMPLE = {
    "id": "6f1d3a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
    "instrumentType": "SEPA_BANK_ACCOUNT",
    "status": "VERIFIED",
    "lastDigits": "3000",
    "displayName": "DE89 •••• 3000",
    "creationTime": "2026-11-25T09:30:00Z",
    "accountHolderName": "Ada Lovelace",
}
_OPTIONS_EXAMPLE = {
    "withdrawalOptions": [
        {
            "paymentOption": "BANK_TRANSFER",
            "instrumentTypes": ["SEPA_BANK_ACCOUNT"],
            "currencyCodes": ["EUR"],
            "minAmount": 100,
            "maxAmount": 1_000_000,
            "fee": {
                "fixedAmount": 50,
                "basisPoints": 100,
                "minAmount": 0,
                "maxAmount": 500,
                "paymentReason": "MERCHANT_FEE",
            },
        }
    ]
}
_WRITE = (400, 401, 403, 404, 405, 409, 413)
_READ = (400, 401, 403, 404)

CREATE = _operation(
    "Create a withdrawal (Paysafe)",
    201,
    "PaysafeWithdrawal",
    WITHDRAWAL_EXAMPLE,
    _WRITE,
    body=_CREATE_BODY,
)
PROFILE_CREATE = _operation(
    "Create a withdrawal for the current customer (Paysafe)",
    201,
    "PaysafeWithdrawal",
    WITHDRAWAL_EXAMPLE,
    _WRITE,
    body=_CREATE_BODY,
)
STATUS = _operation(
    "Move a withdrawal (Paysafe)",
    200,
    "PaysafeWithdrawal",
    WITHDRAWAL_EXAMPLE,
    _WRITE,
    body=_STATUS_BODY,
)
PROFILE_STATUS = _operation(
    "Move the current customer's withdrawal (Paysafe)",
    200,
    "PaysafeWithdrawal",
    WITHDRAWAL_EXAMPLE,
    _WRITE,
    body=_STATUS_BODY,
)
LIST = _operation(
    "List a customer's withdrawals (Paysafe)",
    200,
    "PaysafeWithdrawalList",
    _LIST_EXAMPLE,
    _READ,
    parameters=_LIST_PARAMETERS,
)
PROFILE_LIST = _operation(
    "List the current customer's withdrawals (Paysafe)",
    200,
    "PaysafeWithdrawalList",
    _LIST_EXAMPLE,
    _READ,
    parameters=_LIST_PARAMETERS,
)
GET = _operation("Get a withdrawal (Paysafe)", 200, "PaysafeWithdrawal", WITHDRAWAL_EXAMPLE, _READ)
PROFILE_GET = _operation(
    "Get the current customer's withdrawal (Paysafe)",
    200,
    "PaysafeWithdrawal",
    WITHDRAWAL_EXAMPLE,
    _READ,
)
OPTIONS = _operation(
    "The current customer's withdrawal options (Paysafe)",
    200,
    "PaysafeWithdrawalOptions",
    _OPTIONS_EXAMPLE,
    _READ,
)
INSTRUMENTS = _operation(
    "The current customer's payment instruments (Paysafe)",
    200,
    "PaysafeInstrumentList",
    {"instruments": [_INSTRUMENT_EXAMPLE]},
    _READ,
)
ADD_INSTRUMENT = _operation(
    "Add a payment instrument for the current customer (Paysafe)",
    201,
    "PaysafeInstrument",
    {**_INSTRUMENT_EXAMPLE, "status": "UNVERIFIED"},
    (400, 401, 403, 413),
    body=_INSTRUMENT_BODY,
)
TOKEN = _operation(
    "Get an access token (Paysafe)",
    200,
    "PaysafeToken",
    {
        "access_token": "kct_5f2c9a1b3d4e_q8Vw…",
        "token_type": "Bearer",
        "expires_in": 900,
        "scope": "payouts:read payouts:write wallets:read",
        "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
    },
    (400, 401, 403, 413),
    body={
        "schema": {
            "type": "object",
            "required": ["grant_type"],
            "properties": {
                "grant_type": {
                    "enum": [
                        "client_credentials",
                        "urn:ietf:params:oauth:grant-type:token-exchange",
                    ]
                },
                "subject_token": {
                    "type": "string",
                    "description": "token exchange: the customer id",
                },
                "subject_token_type": STRING,
            },
        },
    },
    security=[{"HTTPBasic": []}],
    error_schema="PaysafeTokenError",
    error_example={"error": "invalid_client", "error_description": "unknown client"},
)
# The token endpoint's body is a form, as OAuth's is.
TOKEN["openapi_extra"]["requestBody"] = {
    "required": True,
    "content": {
        "application/x-www-form-urlencoded": TOKEN["openapi_extra"]["requestBody"]["content"][
            "application/json"
        ]
    },
}
TOKEN["openapi_extra"]["x-components"] = {
    "schemas": SCHEMAS,
    "securitySchemes": {"HTTPBasic": {"type": "http", "scheme": "basic"}},
}
