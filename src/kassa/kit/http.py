"""Request bodies in, JSON out, at the API edge.

Bodies are parsed by ``json.loads`` with ``parse_float=Decimal`` (a JSON number never becomes a
float), duplicate keys and NaN/Infinity are refused, and bodies over 64 KiB are refused before
they are read whole. Pydantic then validates the parsed object in Python mode.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import Response
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import BaseModel, ValidationError

from kassa.kit.errors import (
    FieldError,
    InvalidAmount,
    MalformedJson,
    PayloadTooLarge,
    ValidationFailed,
)
from kassa.kit.money import DecimalLiteral

MAX_BODY_BYTES = 64 * 1024
JSON_MEDIA_TYPE = "application/json"

ModelT = TypeVar("ModelT", bound=BaseModel)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer`` header, as FastAPI's ``HTTPBearer`` reads it."""
    scheme, credentials = get_authorization_scheme_param(authorization)
    if not (authorization and scheme and credentials) or scheme.lower() != "bearer":
        return None
    return credentials


def _refuse_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not a JSON number")


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJson(f"the key {key!r} appears twice in one object")
        result[key] = value
    return result


def loads(body: bytes) -> Any:
    """A JSON body: no float (a number with a fraction or an exponent is a ``DecimalLiteral``,
    so the amount grammar judges the text the client wrote: ``1E-2`` is refused, though it is
    0.01), no NaN or Infinity, no key twice in one object."""
    try:
        return json.loads(
            body,
            parse_float=DecimalLiteral,
            parse_constant=_refuse_constant,
            object_pairs_hook=_no_duplicate_keys,
        )
    except (ValueError, RecursionError) as error:  # JSONDecodeError and bad UTF-8
        if isinstance(error, MalformedJson):
            raise
        raise MalformedJson(f"the request body is not valid JSON: {error}") from None


async def read_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    return bytes(body)


def field_errors(error: ValidationError) -> list[FieldError]:
    return [
        {
            "field": ".".join(str(part) for part in item["loc"]) or "body",
            "code": item["type"],
            "message": item["msg"],
        }
        for item in error.errors(include_url=False)
    ]


def validate(model: type[ModelT], data: Any) -> ModelT:
    """Validate parsed JSON; an amount problem is ``invalid_amount``, anything else
    ``validation_failed``, each with every field error found."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        errors = field_errors(error)
        if any(item["code"] == "invalid_amount" for item in errors):
            raise InvalidAmount(errors[0]["message"], errors=errors) from None
        raise ValidationFailed("the request body has invalid fields", errors=errors) from None


def parse_json(body: bytes, model: type[ModelT], *, empty_ok: bool = False) -> ModelT:
    if not body.strip():
        if not empty_ok:
            raise MalformedJson("the request needs a JSON body")
        return validate(model, {})
    return validate(model, loads(body))


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that an endpoint parses itself."""
    return {
        "requestBody": {
            "required": True,
            "content": {JSON_MEDIA_TYPE: {"schema": model.model_json_schema()}},
        }
    }


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON_MEDIA_TYPE)
