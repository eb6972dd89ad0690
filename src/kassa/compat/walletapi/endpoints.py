"""The WalletAPI dialect, under ``/compat/walletapi``.

``POST /api/v1/wallet/withdraw`` with ``{Id, Amount, Description, ExternalReference}``: the
wallet by its id, ``Amount`` a JSON number in the wallet currency's major units. The caller
sends two headers: ``apikeypublic`` carries a Kassa API key and ``apiclientpublic`` the id of the
tenant that key belongs to; both must match. Every answer is the document's envelope
``{Value, Errors, IsSuccess, IsFailure}``; see ``docs/dialects.md``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa.auth.deps import authorize
from kassa.auth.service import Principal
from kassa.compat.common import (
    Move,
    json_answer,
    json_number,
    major,
    move_money,
    retry_after,
    wallet_by_id,
)
from kassa.idempotency.http import answer_response
from kassa.idempotency.service import Answer
from kassa.kit.clock import isoformat
from kassa.kit.errors import (
    FieldError,
    InvalidAmount,
    KassaError,
    MalformedJson,
    Unauthorized,
    ValidationFailed,
)
from kassa.kit.fields import DESCRIPTION, REFERENCE, TextRule
from kassa.kit.http import direct, loads, read_body
from kassa.kit.money import MajorAmount, parse_major
from kassa.kit.openapi import dialect_doc
from kassa.ledger.schemas import TransactionOut
from kassa.state import app_state
from kassa.wallets import movements
from kassa.wallets.schemas import WalletOut

SCOPE = "withdrawals:write"
BASE = "/compat/walletapi"
router = APIRouter(prefix=BASE, tags=["WalletAPI dialect"])

# HTTP status per refusal: the document shows only success, so these follow HTTP's meanings.
_STATUS = {
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "insufficient_funds": 409,
    "wallet_frozen": 409,
    "wallet_closed": 409,
    "duplicate_reference": 409,
    "idempotency_key_in_use": 409,
    "idempotency_key_reused": 422,
}


def _envelope(value: dict[str, Any] | None, errors: list[str]) -> dict[str, Any]:
    return {"Value": value, "Errors": errors, "IsSuccess": not errors, "IsFailure": bool(errors)}


def render_error(error: KassaError) -> Answer:
    """Every error in the envelope; a 500 or 503 (with ``Retry-After``) keeps its status."""
    messages = [f"{item['field']}: {item['message']}" for item in error.errors] or [error.detail]
    status = error.status if error.status >= 500 else _STATUS.get(error.code, 400)
    return json_answer(status, _envelope(None, messages), retry_after(error))


def merchant_id(tenant_id: uuid.UUID) -> int:
    """The tenant as the positive 31-bit integer the document's MerchantId example shows."""
    return int.from_bytes(tenant_id.bytes[:4], "big") & 0x7FFFFFFF


def _money(amount: int, currency: str) -> Any:
    return json_number(major(amount, currency))


def wallet_value(wallet: WalletOut, tenant_id: uuid.UUID) -> dict[str, Any]:
    return {
        "Id": str(wallet.id),
        "WalletOwnerId": wallet.customer_id,
        "Name": wallet.name or "",
        "Alias": wallet.alias,
        "MerchantId": merchant_id(tenant_id),
        "RegionId": 1,
        "CurrencyCode": wallet.currency,
        "Balance": _money(wallet.balance, wallet.currency),
        "AvailableBalance": _money(wallet.available_balance, wallet.currency),
        "TotalGiftBalance": _money(wallet.gift_balance, wallet.currency),
        "BlockedBalance": _money(wallet.held_balance, wallet.currency),
        "FrozenUntil": isoformat(wallet.frozen_until) if wallet.frozen_until else None,
        "IsFrozen": wallet.status == "frozen",
        "IsDeleted": wallet.status == "closed",
        "CreatedAt": isoformat(wallet.created_at),
        "UpdatedAt": isoformat(wallet.updated_at),
    }


def _text(body: dict[str, Any], name: str, rule: TextRule, errors: list[FieldError]) -> str | None:
    value = body.get(name.lower())
    if value is None:
        return None
    try:
        return rule.check(value, name)
    except ValidationFailed as error:
        errors.extend(error.errors)
        return None


def _parse(raw: bytes) -> tuple[uuid.UUID, MajorAmount, str | None, str | None]:
    parsed = loads(raw) if raw.strip() else None
    if not isinstance(parsed, dict):
        raise MalformedJson("the body must be a JSON object")
    # .NET model binding matches member names whatever their case.
    body = {str(key).lower(): value for key, value in parsed.items()}
    errors: list[FieldError] = []
    wallet_id: uuid.UUID | None = None
    try:
        wallet_id = uuid.UUID(str(body["id"])) if isinstance(body.get("id"), str) else None
    except ValueError:
        wallet_id = None
    if wallet_id is None:
        errors.append({"field": "Id", "code": "invalid", "message": "the wallet's Guid"})
    amount: MajorAmount | None = None
    value = body.get("amount")
    if isinstance(value, bool) or not isinstance(value, int | Decimal):  # .NET's decimal
        errors.append({"field": "Amount", "code": "invalid", "message": "a positive number"})
    else:
        try:
            amount = parse_major(value, "Amount")
        except InvalidAmount as error:
            errors.extend(error.errors)
    reference = _text(body, "ExternalReference", REFERENCE, errors)
    description = _text(body, "Description", DESCRIPTION, errors)
    if errors:
        raise ValidationFailed(errors=errors)
    assert wallet_id is not None
    assert amount is not None
    return wallet_id, amount, reference, description


async def _authorize(request: Request) -> Principal:
    key = request.headers.get("apikeypublic")
    client = request.headers.get("apiclientpublic")
    if not key or not client:
        raise Unauthorized("the apikeypublic and apiclientpublic headers are required")
    principal = await authorize(app_state(request).authenticator, key, SCOPE)
    if client.strip().lower() != str(principal.tenant_id):
        raise Unauthorized("apiclientpublic does not match apikeypublic")
    return principal


_MONEY = {"type": "number", "description": "major units of the wallet's currency"}
_WALLET = {
    "type": "object",
    "required": ["Id", "WalletOwnerId", "CurrencyCode", "Balance", "TransactionId"],
    "properties": {
        "Id": {"type": "string", "format": "uuid"},
        "WalletOwnerId": {"type": "string", "description": "the wallet's customer_id"},
        "Name": {"type": "string"},
        "Alias": {"type": "string"},
        "MerchantId": {"type": "integer", "description": "derived from the tenant id"},
        "RegionId": {"type": "integer"},
        "CurrencyCode": {"type": "string"},
        "Balance": _MONEY,
        "AvailableBalance": _MONEY,
        "TotalGiftBalance": _MONEY,
        "BlockedBalance": _MONEY,
        "FrozenUntil": {"type": ["string", "null"]},
        "IsFrozen": {"type": "boolean"},
        "IsDeleted": {"type": "boolean"},
        "CreatedAt": {"type": "string"},
        "UpdatedAt": {"type": "string"},
        "TransactionId": {"type": "string", "format": "uuid"},
    },
}
_WALLET_EXAMPLE = {
    "Id": "30bac1c0-ad6b-4c50-a52e-1b34f9b487a7",
    "WalletOwnerId": "cust-1042",
    "Name": "Main wallet",
    "Alias": "4193027716",
    "MerchantId": 1139470133,
    "RegionId": 1,
    "CurrencyCode": "EUR",
    "Balance": 124.0,
    "AvailableBalance": 104.5,
    "TotalGiftBalance": 5.0,
    "BlockedBalance": 19.5,
    "FrozenUntil": None,
    "IsFrozen": False,
    "IsDeleted": False,
    "CreatedAt": "2026-11-25T09:30:00Z",
    "UpdatedAt": "2026-11-25T09:31:07Z",
    "TransactionId": "7d3e9a10-52c4-4b8f-a6d1-0e9f3b2c5a48",
}
_DOC = dialect_doc(
    summary="Withdraw (WalletAPI)",
    security=[{"WalletApiKey": [], "WalletApiClient": []}],
    body={
        "schema": {
            "type": "object",
            "description": "member names match whatever their case, as in .NET",
            "required": ["Id", "Amount"],
            "properties": {
                "Id": {"type": "string", "format": "uuid", "description": "the wallet's id"},
                "Amount": {"type": "number", "description": "positive, major units"},
                "Description": {"type": "string", "maxLength": 255},
                "ExternalReference": {"type": "string", "description": "unique per tenant"},
            },
        },
        "example": {
            "Id": "30bac1c0-ad6b-4c50-a52e-1b34f9b487a7",
            "Amount": 1,
            "Description": "description",
            "ExternalReference": "order-1",
        },
    },
    success={
        "schema": {"$ref": "#/components/schemas/WalletApiWithdrawal"},
        "example": _envelope(_WALLET_EXAMPLE, []),
    },
    error={
        "schema": {"$ref": "#/components/schemas/WalletApiFailure"},
        "example": _envelope(None, ["Amount: a positive number"]),
    },
    refusals={
        400: "an invalid body (Errors lists the fields), a body that is not JSON or over 64 KiB,"
        " or an invalid Idempotency-Key",
        401: "missing or mismatched apikeypublic / apiclientpublic",
        403: f"the API key lacks {SCOPE}",
        404: "no such wallet for this tenant",
        409: "insufficient funds, a frozen or closed wallet, a repeated ExternalReference, or a"
        " request with this Idempotency-Key still in flight",
        422: "the Idempotency-Key was used for another request",
    },
    components={
        "schemas": {
            "WalletApiWallet": _WALLET,
            "WalletApiWithdrawal": {
                "type": "object",
                "required": ["Value", "Errors", "IsSuccess", "IsFailure"],
                "properties": {
                    "Value": {"$ref": "#/components/schemas/WalletApiWallet"},
                    "Errors": {"type": "array", "maxItems": 0},
                    "IsSuccess": {"const": True},
                    "IsFailure": {"const": False},
                },
            },
            "WalletApiFailure": {
                "type": "object",
                "description": "WalletAPI's envelope of a refusal",
                "required": ["Value", "Errors", "IsSuccess", "IsFailure"],
                "properties": {
                    "Value": {"type": "null"},
                    "Errors": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                    "IsSuccess": {"const": False},
                    "IsFailure": {"const": True},
                },
            },
        },
        "securitySchemes": {
            "WalletApiKey": {
                "type": "apiKey",
                "in": "header",
                "name": "apikeypublic",
                "description": f"a Kassa API key with {SCOPE}",
            },
            "WalletApiClient": {
                "type": "apiKey",
                "in": "header",
                "name": "apiclientpublic",
                "description": "the id of the tenant the apikeypublic key belongs to",
            },
        },
    },
)


@router.post("/api/v1/wallet/withdraw", **_DOC)
@direct
async def withdraw(request: Request) -> Response:
    """Withdraw from a wallet at once (WalletAPI's withdraw)."""
    state = app_state(request)
    try:
        raw = await read_body(request)
        principal = await _authorize(request)
        wallet_id, amount, reference, description = _parse(raw)
        wallet = await wallet_by_id(state, principal.tenant_id, wallet_id)
        minor = amount.minor_units(wallet.currency)
        move = Move(movements.WITHDRAWAL, wallet, minor, reference, description)

        def render(
            transaction: TransactionOut, after: WalletOut, now: datetime
        ) -> tuple[int, dict[str, Any]]:
            value = wallet_value(after, principal.tenant_id) | {
                "TransactionId": str(transaction.id)
            }
            return 200, _envelope(value, [])

        answer = await move_money(request, state, principal, raw, move, render, render_error)
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)
