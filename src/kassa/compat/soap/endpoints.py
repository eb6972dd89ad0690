"""The Soap dialect: Soap's checkout API (balance withdrawal), under ``/compat/soap``.

``POST /api/v1/checkouts`` with the key in ``Authorization`` (raw, as Soap's examples send it,
or as ``Bearer``) makes a Kassa checkout session for the customer's wallet in the tenant's
currency and answers in Soap's shape; the customer is sent to its ``url``, Kassa's hosted page.
See ``docs/dialects.md``.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa.auth.deps import authorize
from kassa.checkouts import service as checkouts
from kassa.checkouts.schemas import NewCheckout
from kassa.compat.common import json_answer, retry_after
from kassa.customers import profiles
from kassa.idempotency.http import answer_response
from kassa.idempotency.service import Answer
from kassa.kit.clock import isoformat
from kassa.kit.errors import FieldError, KassaError, ValidationFailed
from kassa.kit.fields import TEXT255, TextRule
from kassa.kit.http import bearer_token, loads, read_body, validate
from kassa.kit.openapi import dialect_doc
from kassa.state import app_state

SCOPE = "checkouts:write"
BASE = "/compat/soap"
router = APIRouter(prefix=BASE, tags=["Soap dialect"])
FIELDS = frozenset(
    {
        "customer_id",
        "type",
        "balance_amount_cents",
        "fixed_amount_cents",
        "experience",
        "return_url",
    }
)


class DepositsNotOffered(KassaError):
    code = "deposits_not_offered"
    status = 422
    title = "Kassa's checkout takes withdrawals only"


def render_error(error: KassaError) -> Answer:
    status = 422 if error.status == 400 and error.code != "malformed_json" else error.status
    document: dict[str, Any] = {"error": {"code": error.code, "message": error.detail}}
    if error.errors:
        document["error"]["fields"] = [
            {"field": item["field"], "message": item["message"]} for item in error.errors
        ]
    return json_answer(status, document, retry_after(error))


def _key(authorization: str | None) -> str | None:
    """Soap's examples send the raw key; ``Bearer <key>`` is taken too."""
    bearer = bearer_token(authorization)
    if bearer is not None:
        return bearer
    raw = (authorization or "").strip()
    return raw or None


def _body(raw: bytes) -> NewCheckout:
    document = loads(raw)
    if not isinstance(document, dict):
        raise ValidationFailed("the body must be a JSON object")
    unknown = sorted(set(document) - FIELDS)
    errors: list[FieldError] = [
        {"field": name, "code": "unknown_field", "message": "not a field of this request"}
        for name in unknown
    ]
    if errors:
        raise ValidationFailed(f"unknown field(s): {', '.join(unknown)}", errors=errors)
    if document.get("type") == "deposit":
        raise DepositsNotOffered("type deposit is not offered: Kassa's checkout pays out only")
    if document.get("return_url") is None:
        message = "Kassa sends the customer back to it: give one"
        raise ValidationFailed(
            f"return_url: {message}",
            errors=[{"field": "return_url", "code": "missing", "message": message}],
        )
    TEXT255.check(document.get("customer_id"), "customer_id")
    return validate(
        NewCheckout,
        {
            "customer_id": document["customer_id"],
            "type": document.get("type"),
            "max_amount": document.get("balance_amount_cents"),
            "fixed_amount": document.get("fixed_amount_cents"),
            "experience": document.get("experience", "web"),
            "return_url": document["return_url"],
        },
    )


_DOC = dialect_doc(
    summary="Create a checkout (Soap)",
    security=[{"HTTPBearer": []}],
    body={
        "schema": {
            "type": "object",
            "required": ["customer_id", "type", "balance_amount_cents", "return_url"],
            "properties": {
                "customer_id": {"type": "string", "minLength": 1, "maxLength": 255},
                "type": {"enum": ["withdrawal"]},
                "balance_amount_cents": {"type": "integer", "minimum": 1, "maximum": 10**15},
                "fixed_amount_cents": {"type": "integer", "minimum": 1, "maximum": 10**15},
                "experience": {"enum": ["web", "webview"]},
                "return_url": {"type": "string", "minLength": 1, "maxLength": 2048},
            },
            "additionalProperties": False,
        },
        "example": {
            "customer_id": "cus_vi57KegYgcRqcGHqip8q6UZiqtrwMT870",
            "type": "withdrawal",
            "balance_amount_cents": 10000,
            "experience": "web",
            "return_url": "https://myapp.com/wallet",
        },
    },
    success={
        "schema": {"$ref": "#/components/schemas/SoapCheckout"},
        "example": {
            "id": "chk_01a2421deaef774583206b6cc871d595",
            "url": "https://kassa.example.com/checkout/01a2421d-eaef-7745-8320-6b6cc871d595/cs_…",
            "client_secret": "cs_G7lnjRqZo04pnsO-iYxrrm1yBSU3UMdmOUkVQMocKC8",
            "type": "withdrawal",
            "experience": "web",
            "balance_amount_cents": 10000,
            "line_items": [],
            "line_items_total_amount_cents": None,
            "subscription": None,
        },
    },
    error={
        "schema": {"$ref": "#/components/schemas/SoapError"},
        "example": {"error": {"code": "not_found", "message": "customer … has no EUR wallet"}},
    },
    refusals={
        400: "the body is not JSON",
        401: "no key, or an unknown or revoked one",
        403: f"the key lacks {SCOPE}",
        404: "the customer has no wallet in the tenant's currency",
        413: "the body is over 64 KiB",
        422: "an invalid member, a deposit, or no return_url",
    },
    components={
        "schemas": {
            "SoapCheckout": {
                "type": "object",
                "required": ["id", "url", "client_secret", "type"],
                "properties": {
                    "id": {"type": "string"},
                    "url": {"type": "string"},
                    "client_secret": {"type": "string"},
                    "type": {"const": "withdrawal"},
                    "experience": {"type": "string"},
                    "balance_amount_cents": {"type": ["integer", "null"]},
                    "fixed_amount_cents": {"type": ["integer", "null"]},
                    "line_items": {"type": "array"},
                    "line_items_total_amount_cents": {"type": "null"},
                    "subscription": {"type": "null"},
                },
            },
            "SoapError": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {"type": "string"},
                            "message": {"type": "string"},
                            "fields": {"type": "array"},
                        },
                    }
                },
            },
        }
    },
)


@router.post("/api/v1/checkouts", **_DOC)
async def create_checkout(request: Request) -> Response:
    """A checkout session for a customer's balance withdrawal (Soap's create checkout)."""
    state = app_state(request)
    try:
        raw = await read_body(request)
        principal = await authorize(
            state.authenticator, _key(request.headers.get("authorization")), SCOPE
        )
        body = _body(raw)
        now = state.clock.now()
        async with state.db.write() as conn:
            if body.customer_id.startswith(profiles.PREFIX):
                # A Soap customer record stands for the Kassa customer it names.
                known = await profiles.customer_id(conn, principal.tenant_id, body.customer_id)
                if known is not None:
                    body = body.model_copy(update={"customer_id": known})
            issued = await checkouts.create(
                state.db,
                conn,
                principal.tenant_id,
                principal.currency,
                body,
                str(request.base_url).rstrip("/"),
                state.settings.webhook_allowed_hosts,
                now,
            )
        document: dict[str, Any] = {
            "id": "chk_" + uuid.UUID(str(issued.id)).hex,
            "url": issued.url,
            "client_secret": issued.client_secret,
            "type": "withdrawal",
            "experience": issued.experience,
            "balance_amount_cents": issued.max_amount,
            "fixed_amount_cents": issued.fixed_amount,
            "line_items": [],
            "line_items_total_amount_cents": None,
            "subscription": None,
        }
        answer = json_answer(200, document)
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)


CUSTOMER_FIELDS = {
    "email": TextRule(3, 320),
    "first_name": TextRule(1, 200),
    "last_name": TextRule(1, 200),
    "phone_number": TextRule(1, 40),
    "date_of_birth": TextRule(10, 10),
    "internal_id": TEXT255,
}
_CUSTOMER_DOC = dialect_doc(
    summary="Create a customer (Soap)",
    security=[{"HTTPBearer": []}],
    body={
        "schema": {
            "type": "object",
            "required": ["email", "first_name", "last_name"],
            "properties": {
                "email": {"type": "string", "minLength": 3, "maxLength": 320},
                "first_name": {"type": "string", "minLength": 1, "maxLength": 200},
                "last_name": {"type": "string", "minLength": 1, "maxLength": 200},
                "phone_number": {"type": "string", "minLength": 1, "maxLength": 40},
                "date_of_birth": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                "internal_id": {"type": "string", "minLength": 1, "maxLength": 255},
            },
            "additionalProperties": False,
        },
        "example": {
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "internal_id": "user-1042",
        },
    },
    success={
        "schema": {"$ref": "#/components/schemas/SoapCustomer"},
        "example": {
            "id": "cus_5f2c9a1b3d4e5f60718293a4b5c6d7e8",
            "internal_id": "user-1042",
            "email": "ada@example.com",
            "first_name": "Ada",
            "last_name": "Lovelace",
            "phone_number": None,
            "date_of_birth": None,
            "created_at": "2026-12-04T18:00:00Z",
        },
    },
    error={
        "schema": {"$ref": "#/components/schemas/SoapError"},
        "example": {"error": {"code": "customer_email_taken", "message": "a customer with …"}},
    },
    refusals={
        400: "the body is not JSON",
        401: "no key, or an unknown or revoked one",
        403: f"the key lacks {SCOPE}",
        413: "the body is over 64 KiB",
        422: "an invalid member, or a customer with this email exists",
    },
    components={
        "schemas": {
            "SoapCustomer": {
                "type": "object",
                "required": ["id", "email", "first_name", "last_name", "created_at"],
                "properties": {
                    "id": {"type": "string"},
                    "internal_id": {"type": ["string", "null"]},
                    "email": {"type": "string"},
                    "first_name": {"type": "string"},
                    "last_name": {"type": "string"},
                    "phone_number": {"type": ["string", "null"]},
                    "date_of_birth": {"type": ["string", "null"]},
                    "created_at": {"type": "string"},
                },
            }
        }
    },
)


@router.post("/api/v1/customers", **_CUSTOMER_DOC)
async def create_customer(request: Request) -> Response:
    """A customer record (Soap's create customer); its ``cus_…`` id names the Kassa customer
    ``internal_id`` (or, without one, the ``cus_…`` id itself) in checkouts."""
    state = app_state(request)
    try:
        raw = await read_body(request)
        principal = await authorize(
            state.authenticator, _key(request.headers.get("authorization")), SCOPE
        )
        fields = _customer_fields(raw)
        now = state.clock.now()
        async with state.db.write() as conn:
            made = await profiles.create(conn, principal.tenant_id, fields, now)
        document = {
            "id": made["id"],
            "internal_id": made["internal_id"],
            "email": made["email"],
            "first_name": made["first_name"],
            "last_name": made["last_name"],
            "phone_number": made["phone_number"],
            "date_of_birth": made["date_of_birth"],
            "created_at": isoformat(now),
        }
        answer = json_answer(200, document)
    except KassaError as error:
        answer = render_error(error)
    return answer_response(answer)


def _customer_fields(raw: bytes) -> dict[str, Any]:
    document = loads(raw)
    if not isinstance(document, dict):
        raise ValidationFailed("the body must be a JSON object")
    errors: list[FieldError] = [
        {"field": name, "code": "unknown_field", "message": "not a field of this request"}
        for name in sorted(set(document) - set(CUSTOMER_FIELDS))
    ]
    for name in ("email", "first_name", "last_name"):
        if document.get(name) is None:
            errors.append({"field": name, "code": "missing", "message": "is required"})
    fields: dict[str, Any] = {}
    for name, rule in CUSTOMER_FIELDS.items():
        if document.get(name) is None:
            continue
        try:
            fields[name] = rule.check(document[name], name)
        except KassaError as error:
            errors.extend(error.errors)
    if "email" in fields and "@" not in fields["email"]:
        errors.append({"field": "email", "code": "invalid_email", "message": "not an email"})
    if errors:
        raise ValidationFailed("invalid customer", errors=errors)
    return fields
