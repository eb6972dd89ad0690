"""The Paysafe dialect's schemas in ``/openapi.json`` (Paysafe's withdrawal, error, instrument,
options and token documents) and the examples its operations show."""

from __future__ import annotations

from typing import Any

REF = "#/components/schemas/"
STRING = {"type": "string"}
INTEGER = {"type": "integer"}
STATUS = {
    "type": "string",
    "enum": ["PREVIEW", "PENDING", "PROCESSING", "COMPLETED", "FAILED", "CANCELLED", "REFUNDED"],
}
INSTRUMENT_TYPES = [
    "SEPA_BANK_ACCOUNT",
    "UK_BANK_ACCOUNT",
    "US_BANK_ACCOUNT",
    "CCI_BANK_ACCOUNT",
    "CARD",
]

SCHEMAS: dict[str, Any] = {
    "PaysafeWithdrawal": {
        "type": "object",
        "description": "Paysafe's withdrawal object (a Kassa payout)",
        "required": [
            "id",
            "amount",
            "currencyCode",
            "paymentOption",
            "paymentInstrumentReference",
            "accountId",
            "customerId",
            "creationTime",
            "status",
            "nextStatus",
            "action",
            "fee",
            "fees",
            "type",
        ],
        "properties": {
            "id": STRING,
            "amount": INTEGER | {"description": "minor units"},
            "currencyCode": STRING,
            "paymentOption": STRING,
            "paymentInstrumentReference": {
                "type": "object",
                "properties": {"id": STRING, "instrumentType": {"enum": INSTRUMENT_TYPES}},
            },
            "merchantRefNum": STRING,
            "accountId": STRING,
            "customerId": STRING,
            "slipId": STRING,
            "fundingTransactionId": STRING,
            "creationTime": STRING,
            "expirationTime": STRING,
            "status": STATUS,
            "statusReason": STRING,
            "nextStatus": {"type": "array", "items": STATUS},
            "action": {"type": "string", "enum": ["NONE", "REDIRECT", "SCA"]},
            "scaDetails": {
                "type": "object",
                "properties": {
                    "eventId": STRING,
                    "walletOperationId": STRING,
                    "authenticationMode": {"enum": ["OUTSOURCED", "EMBEDDED", "HYBRID"]},
                    "availableVerifications": {"type": "array", "items": {"type": "object"}},
                    "creationTime": STRING,
                    "expirationTime": STRING,
                },
            },
            "fee": INTEGER,
            "fees": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "amount": INTEGER,
                        "currency": STRING,
                        "paymentReason": STRING,
                    },
                },
            },
            "type": {"enum": ["FIRST_PARTY", "THIRD_PARTY"]},
            "description": STRING,
            "paymentProperties": {"type": "array", "items": {"type": "object"}},
        },
    },
    "PaysafeWithdrawalList": {
        "type": "object",
        "required": ["withdrawals", "meta"],
        "properties": {
            "withdrawals": {"type": "array", "items": {"$ref": f"{REF}PaysafeWithdrawal"}},
            "meta": {
                "type": "object",
                "properties": {
                    "numberOfRecords": INTEGER,
                    "limit": INTEGER,
                    "offset": INTEGER,
                    "page": INTEGER,
                },
            },
        },
    },
    "PaysafeError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {
                    "code": STRING,
                    "message": STRING,
                    "details": {"type": "array", "items": STRING},
                    "fieldErrors": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"field": STRING, "error": STRING},
                        },
                    },
                },
            }
        },
    },
    "PaysafeInstrument": {
        "type": "object",
        "required": ["id", "instrumentType", "status"],
        "properties": {
            "id": STRING,
            "instrumentType": {"enum": INSTRUMENT_TYPES},
            "status": {"enum": ["VERIFIED", "UNVERIFIED"]},
            "lastDigits": STRING,
            "displayName": STRING,
            "accountHolderName": STRING,
            "cardHolderName": STRING,
            "creationTime": STRING,
        },
    },
    "PaysafeInstrumentList": {
        "type": "object",
        "required": ["instruments"],
        "properties": {
            "instruments": {"type": "array", "items": {"$ref": f"{REF}PaysafeInstrument"}}
        },
    },
    "PaysafeWithdrawalOptions": {
        "type": "object",
        "required": ["withdrawalOptions"],
        "properties": {"withdrawalOptions": {"type": "array", "items": {"type": "object"}}},
    },
    "PaysafeToken": {
        "type": "object",
        "required": ["access_token", "token_type", "expires_in"],
        "properties": {
            "access_token": STRING,
            "token_type": {"const": "Bearer"},
            "expires_in": INTEGER,
            "scope": STRING,
            "issued_token_type": STRING,
        },
    },
    "PaysafeTokenError": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": STRING, "error_description": STRING},
    },
}

WITHDRAWAL_EXAMPLE = {
    "id": "0b6e4b7e-8f0a-4a51-9d7e-55b9a1f3c2d1",
    "amount": 1000,
    "currencyCode": "EUR",
    "paymentOption": "BANK_TRANSFER",
    "paymentInstrumentReference": {
        "id": "6f1d3a2b-4c5d-4e6f-8a9b-0c1d2e3f4a5b",
        "instrumentType": "SEPA_BANK_ACCOUNT",
    },
    "accountId": "30bac1c0-ad6b-4c50-a52e-1b34f9b487a7",
    "customerId": "500014306996",
    "creationTime": "2026-11-25T09:30:00Z",
    "expirationTime": "2026-11-25T09:45:00Z",
    "status": "PREVIEW",
    "nextStatus": ["PENDING", "CANCELLED"],
    "action": "NONE",
    "fee": 100,
    "fees": [{"amount": 100, "currency": "EUR", "paymentReason": "MERCHANT_FEE"}],
    "type": "FIRST_PARTY",
    "merchantRefNum": "4bc2deb3-9766-4598-a08e-a98b60615936",
}
ERROR_EXAMPLE = {
    "error": {
        "code": "DW-INVALID-WITHDRAW-ACCOUNT",
        "message": "Withdrawal from this account is not supported.",
        "details": ["customer 500014306996 has no USD account"],
    }
}
