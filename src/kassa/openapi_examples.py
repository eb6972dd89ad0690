"""Examples for ``/openapi.json``: one per request body and per answer, by schema name.

:func:`kassa.openapi_doc.complete` puts each on the media types whose schema it names (a
``Page_X_`` is a page of ``X``'s example; a problem's is made from the ``code`` its description
names first). ``tests/openapi/test_document.py`` checks every example against its schema, and
schemathesis sends the request examples to the real server.
"""

from __future__ import annotations

from typing import Any

from kassa.kit.errors import FieldError

WALLET_ID = "0b6f8c52-3c1e-4d7a-9f0e-5a2d4c8b7e61"
TRANSACTION_ID = "7d3e9a10-52c4-4b8f-a6d1-0e9f3b2c5a48"
EVENT_ID = "c41f7b2e-9a05-4e63-8d1c-6b0a2f5e9d37"
ENDPOINT_ID = "3a9d5e71-0c2b-4f86-b4e8-1d7f6a0c9b52"
INSTRUMENT_ID = "e2b84c69-7f13-4a0d-9c5e-8b1a6d3f0e24"
PAYOUT_ID = "9f1a2b3c-4d5e-4f60-8a7b-c8d9e0f1a2b3"
AT = "2026-11-25T09:30:00Z"
LATER = "2026-11-25T09:31:07Z"

_WALLET: dict[str, Any] = {
    "id": WALLET_ID,
    "customer_id": "cust-1042",
    "currency": "EUR",
    "name": "Main wallet",
    "alias": "4193027716",
    "status": "active",
    "frozen_until": None,
    "freeze_reason": None,
    "balance": 12_500,
    "held_balance": 2_050,
    "available_balance": 10_450,
    "gift_balance": 500,
    "total_balance": 13_000,
    "metadata": {"segment": "retail"},
    "created_at": AT,
    "updated_at": LATER,
}
_ENDPOINT: dict[str, Any] = {
    "id": ENDPOINT_ID,
    "url": "https://hooks.example.com/kassa",
    "description": "order service",
    "event_types": ["wallet.credited", "wallet.debited"],
    "enabled": True,
    "format": "standard",
    "disabled_reason": None,
    "created_at": AT,
}
_INSTRUMENT: dict[str, Any] = {
    "id": INSTRUMENT_ID,
    "customer_id": "cust-1042",
    "type": "SEPA_BANK_ACCOUNT",
    "status": "verified",
    "holder_name": "Dana Weber",
    "display": "DE89 **** **** **** **30 00",
    "last4": "3000",
    "details": {"bic": "COBADEFFXXX", "country": "DE"},
    "fingerprint": "f3b1c0d2a9e8475b6c1d0e9f8a7b6c5d",
    "created_at": AT,
    "verified_at": LATER,
}
_BANK_TRANSFER: dict[str, Any] = {
    "code": "BANK_TRANSFER",
    "instrument_types": ["SEPA_BANK_ACCOUNT"],
    "currencies": ["EUR"],
    "min_amount": 100,
    "max_amount": 1_000_000,
    "fee": {"fixed": 50, "bps": 100, "min": 50, "max": 500},
    "connector": "manual",
}

# Answers, by the name of their schema component.
_NEW_WALLET: dict[str, Any] = {
    **_WALLET,
    "balance": 0,
    "held_balance": 0,
    "available_balance": 0,
    "gift_balance": 0,
    "total_balance": 0,
    "updated_at": AT,
}

RESPONSES: dict[str, Any] = {
    "WalletOut": _WALLET,
    "WalletBatchOut": {
        "data": [
            {"status": 201, "wallet": _NEW_WALLET, "error": None},
            {
                "status": 409,
                "wallet": None,
                "error": {
                    "type": "urn:kassa:problem:wallet_exists",
                    "title": "The customer already has a wallet in this currency",
                    "status": 409,
                    "detail": "customer 'cust-1043' already has a EUR wallet",
                    "code": "wallet_exists",
                    "wallet_id": "5c2e7a91-8d04-4b3f-a6e1-2f9b0c7d4e58",
                },
            },
        ],
        "created": 1,
        "refused": 1,
    },
    "TransactionOut": {
        "id": TRANSACTION_ID,
        "wallet_id": WALLET_ID,
        "kind": "deposit",
        "amount": 2_500,
        "currency": "EUR",
        "balance_before": 10_000,
        "balance_after": 12_500,
        "status": "completed",
        "reference": "order-1042",
        "description": "top-up by card",
        "metadata": {},
        "created_at": LATER,
    },
    "EventOut": {
        "id": EVENT_ID,
        "type": "wallet.credited",
        "created_at": LATER,
        "data": {"id": TRANSACTION_ID, "wallet_id": WALLET_ID, "amount": 2_500, "currency": "EUR"},
    },
    "EndpointOut": _ENDPOINT,
    "EndpointWithSecret": {**_ENDPOINT, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
    "DeletedEndpoint": {"id": ENDPOINT_ID, "deleted": True},
    "DeliveryList": {
        "data": [
            {
                "event_id": EVENT_ID,
                "endpoint_id": ENDPOINT_ID,
                "url": "https://hooks.example.com/kassa",
                "status": "succeeded",
                "next_attempt_at": None,
                "attempts": [
                    {
                        "attempt": 1,
                        "started_at": LATER,
                        "status_code": 200,
                        "error": None,
                        "latency_ms": 84,
                        "response_excerpt": "ok",
                        "succeeded": True,
                    }
                ],
            }
        ]
    },
    "InstrumentOut": _INSTRUMENT,
    "DeletedInstrument": {"id": INSTRUMENT_ID, "deleted": True},
    "PaymentOptions": {"options": [_BANK_TRANSFER], "pending_ttl_seconds": 86_400},
    "PayoutOut": {
        "id": PAYOUT_ID,
        "wallet_id": WALLET_ID,
        "customer_id": "cust-1042",
        "amount": 2_000,
        "currency": "EUR",
        "fees": [{"amount": 50, "currency": "EUR", "reason": "WITHDRAWAL_FEE"}],
        "fee_total": 50,
        "total": 2_050,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": INSTRUMENT_ID,
        "status": "PENDING",
        "status_reason": None,
        "next_status": ["PROCESSING", "CANCELLED"],
        "action": "NONE",
        "expires_at": "2026-11-26T09:31:07Z",
        "reference": "payout-1042",
        "description": None,
        "metadata": {},
        "transaction_id": None,
        "history": [
            {"status": "PREVIEW", "at": AT},
            {"status": "PENDING", "at": LATER},
        ],
        "created_at": AT,
        "updated_at": LATER,
    },
}

# Request bodies, by the title of their schema.
REQUESTS: dict[str, Any] = {
    "NewWallet": {
        "customer_id": "cust-1042",
        "currency": "EUR",
        "name": "Main wallet",
        "metadata": {"segment": "retail"},
    },
    "NewWalletBatch": {
        "wallets": [
            {
                "customer_id": "cust-1042",
                "currency": "EUR",
                "name": "Main wallet",
                "metadata": {"segment": "retail"},
            },
            {"customer_id": "cust-1043", "currency": "EUR"},
        ]
    },
    "DepositIn": {"amount": 2_500, "reference": "order-1042", "description": "top-up by card"},
    "WithdrawalIn": {"amount": 1_000, "reference": "cashout-77"},
    "FreezeIn": {"until": "2026-12-01T00:00:00Z", "reason": "chargeback under review"},
    "NewEndpoint": {
        "url": "https://hooks.example.com/kassa",
        "event_types": ["wallet.credited", "wallet.debited"],
        "description": "order service",
    },
    "EndpointChange": {"enabled": True},
    "RedeliverIn": {"endpoint_id": ENDPOINT_ID},
    "NewInstrument": {
        "type": "SEPA_BANK_ACCOUNT",
        "holder_name": "Dana Weber",
        "iban": "DE89 3704 0044 0532 0130 00",
    },
    "PaymentOptions": RESPONSES["PaymentOptions"],
    "NewPayout": {
        "wallet_id": WALLET_ID,
        "amount": 2_000,
        "payment_option": "BANK_TRANSFER",
        "instrument_id": INSTRUMENT_ID,
        "reference": "payout-1042",
    },
    "StatusChange": {"status": "PENDING"},
}

# The field errors a validation problem's example shows.
FIELD_ERRORS: list[FieldError] = [
    {"field": "amount", "code": "greater_than_equal", "message": "Input should be >= 1"}
]


def response_example(name: str) -> Any:
    """The example answer for the schema component ``name``, if there is one."""
    if name.startswith("Page_") and name.endswith("_"):
        item = RESPONSES.get(name.removeprefix("Page_").removesuffix("_"))
        return None if item is None else {"data": [item], "has_more": False}
    return RESPONSES.get(name)
