"""The Paysafe dialect's access tokens: ``POST /v1/auth/brands/{brand}/token``, OAuth 2.0
client credentials (the partner token) and token exchange (a customer's token)."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request
from fastapi.responses import Response

from kassa.auth import service as auth_service
from kassa.compat.common import json_answer
from kassa.compat.paysafe import openapi
from kassa.compat.paysafe.documents import render_error
from kassa.idempotency.http import answer_response
from kassa.idempotency.service import Answer
from kassa.kit.errors import KassaError, ValidationFailed
from kassa.kit.fields import TEXT255
from kassa.kit.http import read_body
from kassa.state import app_state

router = APIRouter()

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105 - a grant name
PARTNER_TOKEN_SECONDS = 86_400


def _oauth_error(status: int, error: str, description: str) -> Answer:
    headers = [("WWW-Authenticate", 'Basic realm="kassa"')] if status == 401 else []
    return json_answer(status, {"error": error, "error_description": description}, headers)


@router.post("/v1/auth/brands/{brand}/token", **openapi.TOKEN)
async def token(request: Request, brand: str) -> Response:
    """OAuth 2.0 client credentials (``Authorization: Basic base64(client_id:client_secret)``,
    the client id a tenant id and the secret one of its API keys): ``client_credentials`` gives
    the partner token; the token-exchange grant with ``subject_token`` = a customer id gives
    that customer's token (15 minutes; the key needs ``customers:tokens``). ``brand`` is
    accepted as any Paysafe brand name and not used."""
    state = app_state(request)
    try:
        raw = await read_body(request, json_body=False)
        media = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if raw.strip() and media not in ("", "application/x-www-form-urlencoded"):
            return answer_response(
                _oauth_error(400, "invalid_request", "send application/x-www-form-urlencoded")
            )
        form = _form(raw)
        client = _basic(request.headers.get("authorization"))
        if client is None:
            return answer_response(
                _oauth_error(401, "invalid_client", "send HTTP Basic credentials")
            )
        client_id, secret = client
        principal = await state.authenticator.authenticate(secret)
        if (
            principal is None
            or principal.customer_id is not None
            or client_id != str(principal.tenant_id)
        ):
            return answer_response(_oauth_error(401, "invalid_client", "unknown client"))
        grant = form.get("grant_type")
        if grant == "client_credentials":
            document = {
                "access_token": secret,
                "token_type": "Bearer",
                "expires_in": PARTNER_TOKEN_SECONDS,
                "scope": " ".join(sorted(principal.scopes)),
            }
            return answer_response(json_answer(200, document))
        if grant != TOKEN_EXCHANGE:
            return answer_response(
                _oauth_error(400, "unsupported_grant_type", "client_credentials or token exchange")
            )
        customer = form.get("subject_token", "")
        if TEXT255.fault(customer) is not None:
            return answer_response(
                _oauth_error(400, "invalid_request", "subject_token: a customer id")
            )
        if "customers:tokens" not in principal.scopes:
            return answer_response(
                _oauth_error(403, "insufficient_scope", "the key needs customers:tokens")
            )
        now = state.clock.now()
        async with state.db.write() as conn:
            issued = await auth_service.issue_customer_token(
                conn, principal, customer, None, auth_service.DEFAULT_TOKEN_LIFETIME, now
            )
        document = {
            "access_token": issued.token,
            "token_type": "Bearer",
            "expires_in": int(auth_service.DEFAULT_TOKEN_LIFETIME.total_seconds()),
            "scope": " ".join(issued.scopes),
            "issued_token_type": "urn:ietf:params:oauth:token-type:access_token",
        }
        return answer_response(json_answer(200, document))
    except KassaError as error:
        if error.status == 503:
            return answer_response(render_error(error))
        status = 400 if error.status in (400, 413, 415, 422) else error.status
        return answer_response(_oauth_error(status, "invalid_request", error.detail))


def _form(raw: bytes) -> dict[str, str]:
    try:
        pairs = parse_qsl(raw.decode(), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        raise ValidationFailed(
            "the body must be a form (application/x-www-form-urlencoded)"
        ) from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise ValidationFailed(f"{name} is given twice")
        form[name] = value
    return form


def _basic(authorization: str | None) -> tuple[str, str] | None:
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() != "basic" or not credentials:
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    client_id, colon, secret = decoded.partition(":")
    return (client_id, secret) if colon else None
