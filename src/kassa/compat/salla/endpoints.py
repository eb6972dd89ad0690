"""The Salla dialect: Salla Merchant API's Customer Wallet, under ``/compat/salla/admin/v2``.

``POST /customers/wallets/withdraw`` (and its twin ``/customers/wallets/deposit``) with
``{customer_id, amount}``: the customer's wallet in the tenant's default currency, amounts as
JSON numbers in major units. Answers are the document's envelope ``{status, success, data}``
and its 401, 403 and 422 shapes; ``docs/dialects.md`` records every choice the document leaves
open.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa.auth.deps import authorize
from kassa.auth.service import Principal
from kassa.compat.common import (
    Move,
    json_answer,
    json_number,
    move_money,
    plain_major,
    retry_after,
    wallet_by_customer,
)
from kassa.idempotency.http import answer_response
from kassa.idempotency.service import Answer
from kassa.kit.errors import FieldError, InvalidAmount, KassaError, MalformedJson, Unauthorized
from kassa.kit.http import bearer_token, direct, loads, read_body
from kassa.kit.money import major_to_minor
from kassa.kit.openapi import dialect_doc
from kassa.ledger.schemas import TransactionOut
from kassa.state import app_state
from kassa.wallets import movements
from kassa.wallets.schemas import WalletOut

SCOPE = "customer-wallets.read_write"
BASE = "/compat/salla/admin/v2"
router = APIRouter(prefix=BASE, tags=["Salla dialect"])

# The document's own wording, kept as it is (its typo included): clients may compare it.
VALIDATION_MESSAGE = "Validation is not successfull"
SCOPE_MESSAGE = f"The access token should have access to one of those scopes: {SCOPE}"


class SallaError(KassaError):
    """A refusal with Salla's per-field messages."""

    status = 422
    code = "validation_failed"

    def __init__(self, fields: dict[str, list[str]]) -> None:
        super().__init__(VALIDATION_MESSAGE)
        self.fields = fields


def _error(
    status: int, code: str | int, message: str, headers: list[tuple[str, str]] | None = None
) -> Answer:
    document = {"status": status, "success": False, "error": {"code": code, "message": message}}
    return json_answer(status, document, headers)


def _invalid(fields: dict[str, list[str]]) -> Answer:
    document = {
        "status": 422,
        "success": False,
        "error": {"code": "validation_failed", "message": VALIDATION_MESSAGE, "fields": fields},
    }
    return json_answer(422, document)


def render_error(error: KassaError) -> Answer:
    """Any error in the shapes the document gives (401, 403, 422), or the nearest of them: a
    500 or 503 (with ``Retry-After``) has the 403's shape, its integer code the status."""
    if isinstance(error, SallaError):
        return _invalid(error.fields)
    if error.status >= 500:
        return _error(error.status, error.status, error.detail, retry_after(error))
    if isinstance(error, Unauthorized):
        return _error(401, "Unauthorized", error.detail)
    match error.code:
        case "forbidden":
            return _error(401, "Unauthorized", SCOPE_MESSAGE)
        case "wallet_frozen" | "wallet_closed":
            return _error(403, 403, f"The customer wallet is {error.code.removeprefix('wallet_')}")
        case "insufficient_funds":
            return _invalid({"amount": ["The amount may not be greater than the wallet balance."]})
        case "not_found":
            return _invalid({"customer_id": ["The selected customer id is invalid."]})
        case "idempotency_key_reused" | "invalid_idempotency_key":
            return _invalid({"Idempotency-Key": [error.detail]})
        case "idempotency_key_in_use":
            return _error(409, error.code, error.detail)
    fields = _fields(error.errors) if error.errors else {"request": [error.detail]}
    return _invalid(fields)


def _fields(errors: list[FieldError]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for item in errors:
        fields.setdefault(item["field"], []).append(item["message"])
    return fields


# ASCII digits only ([0-9], not \d): a customer id in another digit set is not that customer.
_CUSTOMER_ID = re.compile("[1-9][0-9]*")


def _customer_id(value: Any) -> str | None:
    """A positive integer (a JSON integer, or a string of its digits as Salla's validation
    accepts) as the wallet's ``customer_id`` text; None if it is not one."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value) if value > 0 else None
    if isinstance(value, str) and _CUSTOMER_ID.fullmatch(value):
        return value
    return None


def _parse(raw: bytes, currency: str) -> tuple[str, int]:
    """The body's customer id and amount (minor units), or every field's complaints."""
    try:
        body = loads(raw) if raw.strip() else {}
    except MalformedJson as error:
        raise SallaError({"request": [error.detail]}) from None
    if not isinstance(body, dict):
        raise SallaError({"request": ["The request body must be a JSON object."]})
    fields: dict[str, list[str]] = {}
    customer = _customer_id(body.get("customer_id"))
    if body.get("customer_id") is None:
        fields["customer_id"] = ["The customer id field is required."]
    elif customer is None:
        fields["customer_id"] = ["The customer id must be a positive integer."]
    minor = 0
    if body.get("amount") is None:
        fields["amount"] = ["The amount field is required."]
    else:
        try:
            minor = major_to_minor(body["amount"], currency)
        except InvalidAmount as error:
            fields["amount"] = [f"The amount is not valid: {error.errors[0]['message']}."]
    if fields:
        raise SallaError(fields)
    assert customer is not None
    return customer, minor


def _render(movement: movements.Movement, zone: ZoneInfo) -> Any:
    def render(
        transaction: TransactionOut, wallet: WalletOut, now: datetime
    ) -> tuple[int, dict[str, Any]]:
        signed = transaction.amount * movement.sign
        amount = json_number(plain_major(signed, wallet.currency))
        local = now.astimezone(zone)
        return 200, {
            "status": 200,
            "success": True,
            "data": {
                "status": "confirmed",
                # The document's schema names it amount, its example amount_float: both.
                "amount": amount,
                "amount_float": amount,
                "date": {
                    "date": local.strftime("%Y-%m-%d %H:%M:%S.%f"),
                    "timezone_type": 3,
                    "timezone": zone.key,
                },
                "wallet": {
                    "id": int(wallet.alias),
                    "balance": json_number(plain_major(wallet.available_balance, wallet.currency)),
                    "created_at": wallet.created_at.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S"),
                },
            },
        }

    return render


async def _move(request: Request, movement: movements.Movement) -> Response:
    state = app_state(request)
    try:
        raw = await read_body(request)
        token = bearer_token(request.headers.get("authorization"))
        principal: Principal = await authorize(state.authenticator, token, SCOPE)
        customer_id, amount = _parse(raw, principal.currency)
        wallet = await wallet_by_customer(
            state, principal.tenant_id, customer_id, principal.currency
        )
        if wallet is None:
            raise SallaError({"customer_id": ["The selected customer id is invalid."]})
        move = Move(movement, wallet, amount, None, None)
        answer = await move_money(
            request,
            state,
            principal,
            raw,
            move,
            _render(movement, ZoneInfo(principal.timezone)),
            render_error,
        )
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)


_NUMBER = {"type": "number", "description": "major units, without trailing zeros"}
_DOC: dict[str, Any] = dialect_doc(
    summary="Withdraw (Salla)",
    security=[{"HTTPBearer": []}],
    body={
        "schema": {
            "type": "object",
            "required": ["customer_id", "amount"],
            "properties": {
                "customer_id": {
                    "anyOf": [
                        {"type": "integer", "minimum": 1},
                        {"type": "string", "pattern": "^[1-9][0-9]*$"},
                    ],
                    "description": "the wallet's customer_id: a positive integer",
                },
                "amount": {"type": "number", "description": "major units of the tenant's currency"},
            },
        },
        "example": {"customer_id": 1994632444, "amount": 22},
    },
    success={
        "schema": {"$ref": "#/components/schemas/SallaWalletMove"},
        "example": {
            "status": 200,
            "success": True,
            "data": {
                "status": "confirmed",
                "amount": -22,
                "amount_float": -22,
                "date": {
                    "date": "2026-11-25 12:31:07.000000",
                    "timezone_type": 3,
                    "timezone": "Asia/Riyadh",
                },
                "wallet": {"id": 4193027716, "balance": 78.5, "created_at": "2026-11-25 12:30:00"},
            },
        },
    },
    error={
        "schema": {"$ref": "#/components/schemas/SallaError"},
        "example": {
            "status": 422,
            "success": False,
            "error": {
                "code": "validation_failed",
                "message": VALIDATION_MESSAGE,
                "fields": {"amount": ["The amount field is required."]},
            },
        },
    },
    refusals={
        401: "no valid key, or the key lacks customer-wallets.read_write",
        403: "the customer's wallet is frozen or closed",
        409: "a request with this Idempotency-Key is still in flight",
        422: "validation failed (a body that is not JSON too, insufficient funds, an unknown"
        " customer, an Idempotency-Key problem): error.fields lists each field's messages",
    },
    components={
        "schemas": {
            "SallaWalletMove": {
                "type": "object",
                "required": ["status", "success", "data"],
                "properties": {
                    "status": {"const": 200},
                    "success": {"const": True},
                    "data": {
                        "type": "object",
                        "required": ["status", "amount", "amount_float", "date", "wallet"],
                        "properties": {
                            "status": {"const": "confirmed"},
                            "amount": _NUMBER | {"description": "negative for a withdrawal"},
                            "amount_float": _NUMBER,
                            "date": {
                                "type": "object",
                                "required": ["date", "timezone_type", "timezone"],
                                "properties": {
                                    "date": {"type": "string"},
                                    "timezone_type": {"const": 3},
                                    "timezone": {"type": "string"},
                                },
                            },
                            "wallet": {
                                "type": "object",
                                "required": ["id", "balance", "created_at"],
                                "properties": {
                                    "id": {"type": "integer"},
                                    "balance": _NUMBER,
                                    "created_at": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
            "SallaError": {
                "type": "object",
                "description": "Salla's refusal; a 500 or 503 has an integer code",
                "required": ["status", "success", "error"],
                "properties": {
                    "status": {"type": "integer"},
                    "success": {"const": False},
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": ["string", "integer"]},
                            "message": {"type": "string"},
                            "fields": {
                                "type": "object",
                                "additionalProperties": {
                                    "type": "array",
                                    "items": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
)


@router.post("/customers/wallets/withdraw", **_DOC)
@direct
async def withdraw(request: Request) -> Response:
    """Withdraw from a customer's wallet (Salla's Customer Wallet withdraw)."""
    return await _move(request, movements.WITHDRAWAL)


@router.post("/customers/wallets/deposit", **(_DOC | {"summary": "Deposit (Salla)"}))
@direct
async def deposit(request: Request) -> Response:
    """Add to a customer's wallet (the withdraw endpoint's twin)."""
    return await _move(request, movements.DEPOSIT)
