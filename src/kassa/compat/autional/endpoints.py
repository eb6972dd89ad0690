"""The Autional dialect: Autional Wallet Service, under ``/compat/autional``.

``POST /wallets/{user_id}/withdraw`` with ``{amount, description?, reference_id?}``: the user's
wallet in the tenant's default currency, ``amount`` a decimal string in major units (exact: more
decimals than the currency has is refused, never rounded). Answers are the document's
``{code, message, timestamp, data: {transaction, wallet}}`` and, for refusals,
``{code, message, timestamp}``; see ``docs/dialects.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa.auth.deps import authorize
from kassa.auth.service import Principal
from kassa.compat.common import (
    Move,
    json_answer,
    major,
    move_money,
    retry_after,
    wallet_by_customer,
)
from kassa.idempotency.http import answer_response
from kassa.idempotency.service import Answer
from kassa.kit.clock import Clock
from kassa.kit.errors import FieldError, KassaError, NotFound, ValidationFailed
from kassa.kit.fields import DESCRIPTION, REFERENCE, TEXT255, TextRule
from kassa.kit.http import bearer_token, direct, loads, read_body
from kassa.kit.money import major_to_minor
from kassa.kit.openapi import dialect_doc
from kassa.ledger.schemas import TransactionOut
from kassa.state import app_state
from kassa.wallets import movements
from kassa.wallets.schemas import WalletOut

SCOPE = "withdrawals:write"
BASE = "/compat/autional"
router = APIRouter(prefix=BASE, tags=["Autional dialect"])

# Status and message per error: 400, 401, 409, 422 and 500 as the document gives them, the rest
# the nearest HTTP meaning in the same shape.
_REFUSALS: dict[str, tuple[int, str]] = {
    "unauthorized": (401, "Unauthenticated or invalid token"),
    "forbidden": (403, "The token lacks the permission to withdraw"),
    "not_found": (404, "Wallet not found"),
    "insufficient_funds": (409, "Insufficient balance"),
    "wallet_frozen": (409, "Wallet is frozen"),
    "wallet_closed": (409, "Wallet is closed"),
    "duplicate_reference": (409, "Duplicate reference_id"),
    "idempotency_key_in_use": (409, "A request with this Idempotency-Key is in progress"),
    "invalid_amount": (422, "Invalid amount"),
    "idempotency_key_reused": (422, "Idempotency-Key was used for a different request"),
    "internal_error": (500, "Internal server error"),
    "service_unavailable": (503, "Service unavailable"),
}


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_renderer(clock: Clock) -> Callable[[KassaError], Answer]:
    def render_error(error: KassaError) -> Answer:
        status, message = _REFUSALS.get(error.code, (400, "Invalid request parameters"))
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in error.errors) or error.detail
        document = {"code": status, "message": f"{message}: {detail}"}
        document |= {"timestamp": timestamp(clock.now())}
        return json_answer(status, document, retry_after(error))

    return render_error


def _money(amount: int, currency: str) -> str:
    return str(major(amount, currency))


def wallet_document(wallet: WalletOut, principal: Principal) -> dict[str, Any]:
    return {
        "application_id": str(principal.key_id),
        "balance": _money(wallet.balance, wallet.currency),
        "created_at": timestamp(wallet.created_at),
        "currency": wallet.currency,
        "frozen_balance": _money(wallet.held_balance, wallet.currency),
        "status": wallet.status,
        "tenant_id": str(principal.tenant_id),
        "updated_at": timestamp(wallet.updated_at),
        "user_id": wallet.customer_id,
        "wallet_id": str(wallet.id),
    }


def transaction_document(transaction: TransactionOut) -> dict[str, Any]:
    currency = transaction.currency
    before, after = transaction.balance_before, transaction.balance_after
    return {
        "amount": _money(transaction.amount, currency),
        "balance_after": _money(after, currency) if after is not None else None,
        "balance_before": _money(before, currency) if before is not None else None,
        "counterparty_id": "payouts_clearing",
        "created_at": timestamp(transaction.created_at),
        "currency": currency,
        "description": transaction.description or "",
        "id": str(transaction.id),
        "reference_id": transaction.reference or "",
        "status": transaction.status,
        "type": "withdraw",
        "wallet_id": str(transaction.wallet_id),
    }


def _optional_text(body: dict[str, Any], name: str, rule: TextRule) -> str | None:
    """An optional string member; ``""`` is the same as leaving it out (Go's zero value)."""
    value = body.get(name)
    if value is None or value == "":
        return None
    return rule.check(value, name)


def _parse(raw: bytes, currency: str) -> tuple[int, str | None, str | None]:
    body = loads(raw) if raw.strip() else None
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    amount = body.get("amount")
    if not isinstance(amount, str):
        errors: list[FieldError] = [
            {"field": "amount", "code": "required", "message": 'a decimal string such as "50.00"'}
        ]
        raise ValidationFailed(errors=errors)
    minor = major_to_minor(amount, currency)
    reference = _optional_text(body, "reference_id", REFERENCE)
    description = _optional_text(body, "description", DESCRIPTION)
    return minor, reference, description


_STRING = {"type": "string"}
_MONEY = {"type": "string", "description": 'a decimal in major units, e.g. "50.00"'}
_DOC = dialect_doc(
    summary="Withdraw (Autional)",
    security=[{"HTTPBearer": []}],
    body={
        "schema": {
            "type": "object",
            "required": ["amount"],
            "properties": {
                "amount": _MONEY | {"description": "positive; no more decimals than the currency"},
                "description": {"type": "string", "maxLength": 255},
                "reference_id": {"type": "string", "description": "unique per tenant"},
            },
        },
        "example": {
            "amount": "50.00",
            "description": "Balance withdrawal",
            "reference_id": "withdraw_123",
        },
    },
    success={
        "schema": {"$ref": "#/components/schemas/AutionalWithdrawal"},
        "example": {
            "code": 200,
            "message": "success",
            "timestamp": "2026-11-25T09:31:07Z",
            "data": {
                "transaction": {
                    "amount": "50.00",
                    "balance_after": "74.00",
                    "balance_before": "124.00",
                    "counterparty_id": "payouts_clearing",
                    "created_at": "2026-11-25T09:31:07Z",
                    "currency": "EUR",
                    "description": "Balance withdrawal",
                    "id": "7d3e9a10-52c4-4b8f-a6d1-0e9f3b2c5a48",
                    "reference_id": "withdraw_123",
                    "status": "completed",
                    "type": "withdraw",
                    "wallet_id": "30bac1c0-ad6b-4c50-a52e-1b34f9b487a7",
                },
                "wallet": {
                    "application_id": "5e0f9a8b-7c6d-4e5f-8a9b-0c1d2e3f4a5b",
                    "balance": "74.00",
                    "created_at": "2026-11-25T09:30:00Z",
                    "currency": "EUR",
                    "frozen_balance": "0.00",
                    "status": "active",
                    "tenant_id": "1a2b3c4d-5e6f-4a8b-9c0d-1e2f3a4b5c6d",
                    "updated_at": "2026-11-25T09:31:07Z",
                    "user_id": "user-1042",
                    "wallet_id": "30bac1c0-ad6b-4c50-a52e-1b34f9b487a7",
                },
            },
        },
    },
    error={
        "schema": {"$ref": "#/components/schemas/AutionalError"},
        "example": {
            "code": 409,
            "message": "Insufficient balance: the wallet's available balance is too low",
            "timestamp": "2026-11-25T09:31:07Z",
        },
    },
    refusals={
        400: "invalid request parameters (a body that is not a JSON object, over 64 KiB or not"
        " JSON, a user_id over 255 characters, an invalid Idempotency-Key)",
        401: "unauthenticated or invalid token",
        403: f"the token lacks {SCOPE}",
        404: "the user has no wallet in the tenant's currency",
        409: "insufficient balance (also a frozen or closed wallet, a repeated reference_id, a"
        " request with this Idempotency-Key still in flight)",
        422: "invalid amount, or an Idempotency-Key used for another request",
    },
    components={
        "schemas": {
            "AutionalWithdrawal": {
                "type": "object",
                "required": ["code", "message", "timestamp", "data"],
                "properties": {
                    "code": {"const": 200},
                    "message": {"const": "success"},
                    "timestamp": _STRING,
                    "data": {
                        "type": "object",
                        "required": ["transaction", "wallet"],
                        "properties": {
                            "transaction": {
                                "type": "object",
                                "properties": {
                                    "amount": _MONEY,
                                    "balance_after": {"type": ["string", "null"]},
                                    "balance_before": {"type": ["string", "null"]},
                                    "type": {"const": "withdraw"},
                                },
                                "additionalProperties": _STRING,
                            },
                            "wallet": {
                                "type": "object",
                                "additionalProperties": _STRING,
                            },
                        },
                    },
                },
            },
            "AutionalError": {
                "type": "object",
                "description": "Autional's refusal: code is the HTTP status",
                "required": ["code", "message", "timestamp"],
                "properties": {
                    "code": {"type": "integer"},
                    "message": _STRING,
                    "timestamp": _STRING,
                },
            },
        }
    },
)


@router.post("/wallets/{user_id}/withdraw", **_DOC)
@direct
async def withdraw(request: Request, user_id: str) -> Response:
    """Withdraw from a user's wallet (Autional's withdraw)."""
    state = app_state(request)
    render_error = error_renderer(state.clock)
    try:
        raw = await read_body(request)
        principal = await authorize(
            state.authenticator, bearer_token(request.headers.get("authorization")), SCOPE
        )
        TEXT255.check(user_id, "user_id")  # a wallet's customer_id: anything else has none
        amount, reference, description = _parse(raw, principal.currency)
        wallet = await wallet_by_customer(state, principal.tenant_id, user_id, principal.currency)
        if wallet is None:
            raise NotFound(f"user {user_id} has no {principal.currency} wallet")
        move = Move(movements.WITHDRAWAL, wallet, amount, reference, description)

        def render(
            transaction: TransactionOut, after: WalletOut, now: datetime
        ) -> tuple[int, dict[str, Any]]:
            data = {
                "transaction": transaction_document(transaction),
                "wallet": wallet_document(after, principal),
            }
            return 200, {
                "code": 200,
                "message": "success",
                "timestamp": timestamp(now),
                "data": data,
            }

        answer = await move_money(request, state, principal, raw, move, render, render_error)
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)
