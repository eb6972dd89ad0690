"""The Paysafe dialect's documents: the withdrawal object, the instrument, the payment
options and the error, each built from Kassa's own answers (``docs/dialects.md`` maps every
field)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson

from kassa.compat.common import json_answer, retry_after
from kassa.idempotency.service import Answer
from kassa.instruments.schemas import InstrumentOut
from kassa.kit.errors import FieldError, KassaError
from kassa.payouts.schemas import PaymentOptions, PayoutOut
from kassa.sca.schemas import ScaEventOut

# Payment properties and device information are kept in the payout's metadata under these keys.
PROPERTIES_KEY = "paysafe_payment_properties"
DEVICE_KEY = "paysafe_device_info"
# Kept as a key with this in place of its value: a CVV is never stored (PCI DSS).
HIDDEN = "***"

# Kassa's error code: (HTTP status, Paysafe's code, Paysafe's message). The seed's two
# examples and Paysafe's documented DW- codes where they fit; any other error is
# ``DW-`` + Kassa's code (upper case, dashes) with its own status.
INVALID_ACCOUNT = (
    400,
    "DW-INVALID-WITHDRAW-ACCOUNT",
    "Withdrawal from this account is not supported.",
)
NOT_ALLOWED = (
    405,
    "DW-OPERATION-NOT-ALLOWED",
    "Operation is not allowed in your account. Contact Paysafe for further details.",
)
ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_withdraw_account": INVALID_ACCOUNT,
    "wallet_frozen": INVALID_ACCOUNT,
    "wallet_closed": INVALID_ACCOUNT,
    "unknown_payment_option": NOT_ALLOWED,
    "payment_option_refused": NOT_ALLOWED,
    "insufficient_funds": (
        400,
        "DW-TRANSFER-NOT-ENOUGH-BALANCE",
        "The customer has insufficient balance for the transaction.",
    ),
    "duplicate_reference": (
        409,
        "DW-TRANSFER-DUPLICATED-MERCHANT-REF",
        "Duplicate merchant reference provided.",
    ),
    "currency_mismatch": (
        400,
        "DW-TRANSFER-INVALID-CURRENCY",
        "The withdrawal currency is not the currency of the account.",
    ),
    "unauthorized": (401, "DW-UNAUTHORIZED", "The access token is missing, invalid or expired."),
    "forbidden": (403, "DW-FORBIDDEN", "The access token does not allow this operation."),
    "not_found": (404, "DW-RESOURCE-NOT-FOUND", "The requested resource was not found."),
    "validation_failed": (400, "DW-INVALID-REQUEST", "The request is not valid."),
    "invalid_amount": (400, "DW-INVALID-REQUEST", "The request is not valid."),
    "malformed_json": (400, "DW-INVALID-REQUEST", "The request is not valid."),
    "unknown_parameter": (400, "DW-INVALID-REQUEST", "The request is not valid."),
    "invalid_status_transition": (
        400,
        "DW-INVALID-STATUS-TRANSITION",
        "The withdrawal cannot move to this status.",
    ),
    "payout_expired": (400, "DW-WITHDRAWAL-EXPIRED", "The withdrawal preview has expired."),
    "instrument_not_verified": (
        400,
        "DW-INSTRUMENT-NOT-VERIFIED",
        "The payment instrument is not verified.",
    ),
    "internal_error": (500, "DW-INTERNAL-ERROR", "Internal server error."),
    "service_unavailable": (
        503,
        "DW-SERVICE-UNAVAILABLE",
        "The service is unavailable; try again later.",
    ),
}


def timestamp(moment: datetime) -> str:
    """RFC 3339 to the second, as the seed's examples write it (``2021-07-15T17:54:12Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def error_document(
    status: int, code: str, detail: str, field_errors: list[FieldError]
) -> tuple[int, dict[str, Any]]:
    known = ERRORS.get(code)
    if known is None:
        # Paysafe answers a request it cannot take with 400, where Kassa's /v1 says 422.
        known = (400 if status == 422 else status, "DW-" + code.upper().replace("_", "-"), detail)
    status, paysafe_code, message = known
    error: dict[str, Any] = {"code": paysafe_code, "message": message, "details": [detail]}
    if field_errors:
        error["fieldErrors"] = [
            {"field": item["field"], "error": item["message"]} for item in field_errors
        ]
    return status, {"error": error}


def render_error(error: KassaError) -> Answer:
    status, document = error_document(error.status, error.code, error.detail, error.errors)
    return json_answer(status, document, retry_after(error))


def from_problem(answer: Answer) -> Answer:
    """A ``/v1`` refusal (a problem document, stored or fresh) in Paysafe's shape."""
    problem = orjson.loads(answer.body)
    errors: list[FieldError] = problem.get("errors") or []
    status, document = error_document(
        answer.status, problem.get("code", "error"), problem.get("detail", ""), errors
    )
    return json_answer(status, document, [h for h in answer.headers if h[0] == "Retry-After"])


def withdrawal(
    payout: PayoutOut, instrument_type: str, sca: ScaEventOut | None = None
) -> dict[str, Any]:
    """A payout as Paysafe's withdrawal object."""
    document: dict[str, Any] = {
        "id": str(payout.id),
        "amount": payout.amount,
        "currencyCode": payout.currency,
        "paymentOption": payout.payment_option,
        "paymentInstrumentReference": {
            "id": str(payout.instrument_id),
            "instrumentType": instrument_type,
        },
        "accountId": str(payout.wallet_id),
        "customerId": payout.customer_id,
        "creationTime": timestamp(payout.created_at),
        "expirationTime": timestamp(payout.expires_at),
        "status": payout.status,
        "nextStatus": list(payout.next_status),
        "action": "SCA" if sca is not None else "NONE",
        "fee": payout.fee_total,
        "fees": [
            {"amount": line.amount, "currency": line.currency, "paymentReason": "MERCHANT_FEE"}
            for line in payout.fees
        ],
        "type": "FIRST_PARTY",
    }
    if payout.reference is not None:
        document["merchantRefNum"] = payout.reference
    if payout.status != "PREVIEW":
        # The slip lists the withdrawal's transactions: Kassa's carry metadata.payout_id.
        document["slipId"] = str(payout.id)
    if payout.transaction_id is not None:
        document["fundingTransactionId"] = str(payout.transaction_id)
    if payout.status_reason is not None:
        document["statusReason"] = payout.status_reason[:60]
    if payout.description is not None:
        document["description"] = payout.description
    properties = payout.metadata.get(PROPERTIES_KEY)
    if properties:
        document["paymentProperties"] = orjson.loads(properties)
    if sca is not None:
        document["scaDetails"] = {
            "eventId": str(sca.id),
            "walletOperationId": str(sca.wallet_operation_id),
            "authenticationMode": sca.mode,
            "availableVerifications": [
                {key: value for key, value in way.model_dump().items() if value is not None}
                for way in sca.available_verifications
            ],
            "creationTime": timestamp(sca.created_at),
            "expirationTime": timestamp(sca.expires_at),
        }
    return document


def instrument(found: InstrumentOut) -> dict[str, Any]:
    """A payment instrument as Paysafe names it (masked, as Kassa keeps it)."""
    document: dict[str, Any] = {
        "id": str(found.id),
        "instrumentType": found.type,
        "status": found.status.upper(),
        "lastDigits": found.last4,
        "displayName": found.display,
        "creationTime": timestamp(found.created_at),
    }
    holder = "cardHolderName" if found.type == "CARD" else "accountHolderName"
    document[holder] = found.holder_name
    return document


def options(found: PaymentOptions) -> dict[str, Any]:
    """The tenant's payment options in Paysafe's naming (its public documents do not show this
    answer: ``docs/dialects.md`` records the choice)."""
    return {
        "withdrawalOptions": [
            {
                "paymentOption": option.code,
                "instrumentTypes": list(option.instrument_types),
                "currencyCodes": list(option.currencies),
                "minAmount": option.min_amount,
                "maxAmount": option.max_amount,
                "fee": {
                    "fixedAmount": option.fee.fixed,
                    "basisPoints": option.fee.bps,
                    "minAmount": option.fee.min,
                    "maxAmount": option.fee.max,
                    "paymentReason": "MERCHANT_FEE",
                },
            }
            for option in found.options
        ]
    }
