"""RFC 9457 problem documents for the native API, and the handlers that render them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from kassa.kit.errors import (
    FieldError,
    KassaError,
    MethodNotAllowed,
    NotFound,
    ValidationFailed,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
log = structlog.get_logger("kassa.http")

# An error rendered as (status, media type, body, extra headers).
Rendered = tuple[int, str, bytes, list[tuple[str, str]]]
ErrorRenderer = Callable[[KassaError], Rendered]
_RENDERERS: dict[str, ErrorRenderer] = {}


def register_error_renderer(path_prefix: str, render: ErrorRenderer) -> None:
    """A dialect's own error shape for every request under ``path_prefix``: used for errors
    that reach the app's handlers (a bug as ``InternalError``, an outage as
    ``ServiceUnavailable``) so that a dialect's client never sees the native problem shape."""
    _RENDERERS[path_prefix] = render


def renderer_for(path: str) -> ErrorRenderer | None:
    for prefix, render in _RENDERERS.items():
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return render
    return None


def problem_body(
    code: str, status: int, title: str, detail: str, errors: list[FieldError], extra: dict[str, Any]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:kassa:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = errors
    body.update(extra)
    return body


def problem_json(error: KassaError) -> bytes:
    return orjson.dumps(
        problem_body(error.code, error.status, error.title, error.detail, error.errors, error.extra)
    )


def internal_error_body() -> bytes:
    return orjson.dumps(
        problem_body(
            "internal_error", 500, "Internal error", "Kassa hit a bug; it was logged.", [], {}
        )
    )


def problem_response(error: KassaError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        problem_json(error),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


async def _kassa_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, KassaError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
    return problem_response(error, headers)


async def _request_validation(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    errors: list[FieldError] = [
        {
            "field": ".".join(str(part) for part in item["loc"] if part not in ("query", "path")),
            "code": item["type"],
            "message": item["msg"],
        }
        for item in error.errors()
    ]
    return problem_response(ValidationFailed("the request has invalid parameters", errors=errors))


async def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 404:
        return problem_response(NotFound(f"no route for {request.url.path}"))
    if error.status_code == 405:
        return problem_response(MethodNotAllowed(f"{request.method} is not allowed here"))
    body = problem_body(
        "http_error", error.status_code, str(error.detail), str(error.detail), [], {}
    )
    return Response(
        orjson.dumps(body), status_code=error.status_code, media_type=PROBLEM_MEDIA_TYPE
    )


async def _bug(request: Request, error: Exception) -> Response:
    log.error("unhandled_error", path=request.url.path, method=request.method, exc_info=error)
    return Response(internal_error_body(), status_code=500, media_type=PROBLEM_MEDIA_TYPE)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KassaError, _kassa_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _bug)
