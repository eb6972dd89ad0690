"""Request bodies in, JSON out, at the API edge.

Bodies are parsed by ``json.loads`` with ``parse_float=Decimal`` (a JSON number never becomes a
float), duplicate keys and NaN/Infinity are refused, and bodies over 64 KiB are refused before
they are read whole. Pydantic then validates the parsed object in Python mode.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
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
    UnknownParameter,
    UnsupportedMediaType,
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


def check_media_type(content_type: str | None) -> None:
    """A body must say it is JSON, or say nothing: a body sent as a form or as text is refused
    (415) rather than read as JSON behind the client's back."""
    if content_type is None:
        return
    media = content_type.split(";", 1)[0].strip().lower()
    if media == JSON_MEDIA_TYPE or (media.startswith("application/") and media.endswith("+json")):
        return
    if media in ("application/x-www-form-urlencoded", "multipart/form-data"):
        detail = "Kassa takes JSON bodies, not forms: send the body as JSON"
    else:
        detail = f"a {media or 'body of no media type'} is not JSON: send the body as JSON"
    raise UnsupportedMediaType(f"{detail} with Content-Type: {JSON_MEDIA_TYPE}")


def _declared_query(dependant: Any) -> frozenset[str]:
    names = {param.alias for param in dependant.query_params}
    for dependency in dependant.dependencies:
        names |= _declared_query(dependency)
    return frozenset(names)


_DECLARED_QUERY: dict[int, frozenset[str]] = {}


def refuse_unknown_query(request: Request) -> None:
    """A query parameter the operation does not take is refused (400 ``unknown_parameter``),
    never ignored: a list the client believes filtered must not come back unfiltered."""
    if not request.url.query:
        return
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    allowed = _DECLARED_QUERY.get(id(route))
    if allowed is None:
        allowed = _DECLARED_QUERY[id(route)] = _declared_query(dependant)
    raise_unknown(request.query_params.keys(), allowed)


def raise_unknown(names: Iterable[str], allowed: frozenset[str]) -> None:
    unknown = sorted(set(names) - allowed)
    if unknown:
        listed = ", ".join(unknown)
        raise UnknownParameter(
            f"this operation takes no query parameter {listed}"
            + (f" (it takes {', '.join(sorted(allowed))})" if allowed else ""),
            errors=[
                {"field": name, "code": "unknown_parameter", "message": "not a parameter here"}
                for name in unknown
            ],
        )


async def read_body(
    request: Request, limit: int = MAX_BODY_BYTES, *, json_body: bool = True
) -> bytes:
    """The request's body, up to ``limit`` bytes (a bulk operation takes more); said to be
    JSON unless ``json_body`` is False (an OAuth token request's form)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise PayloadTooLarge(f"request bodies are limited to {limit} bytes")
    if body.strip() and json_body:
        check_media_type(request.headers.get("content-type"))
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
    if not isinstance(data, dict):
        # Said in JSON's words: pydantic's would name an internal class.
        raise ValidationFailed(
            "the request body must be a JSON object",
            errors=[{"field": "body", "code": "object_expected", "message": "must be an object"}],
        )
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


def body_schema(model: type[BaseModel], *, required: bool = True) -> dict[str, Any]:
    """``openapi_extra`` documenting a JSON body that an endpoint parses itself (``required``
    False: it may be left out, as ``parse_json(..., empty_ok=True)`` allows). The model's
    nested ``$defs`` are moved to the document's components by ``kassa.openapi_doc``."""
    return {
        "requestBody": {
            "required": required,
            "content": {JSON_MEDIA_TYPE: {"schema": model.model_json_schema()}},
        }
    }


def json_response(model: BaseModel, status_code: int = 200) -> Response:
    return Response(model.model_dump_json(), status_code=status_code, media_type=JSON_MEDIA_TYPE)


_DirectEndpoint = TypeVar("_DirectEndpoint", bound=Callable[..., Awaitable[Any]])


def direct(endpoint: _DirectEndpoint) -> _DirectEndpoint:
    """Mark a POST endpoint to be served by the app's ASGI front (``wallets.hotpath``) without
    FastAPI's layers: it must take only the request and string path parameters, use no
    dependencies, and return its response."""
    endpoint.__dict__["kassa_direct"] = True
    return endpoint


def is_direct(endpoint: Callable[..., Any]) -> bool:
    return bool(getattr(endpoint, "__dict__", {}).get("kassa_direct"))
