"""RFC 9457 problem documents for the native API, and the handlers that render them.

Every error reaches a client as an answer, whoever raised it: a ``KassaError`` as itself, a
lost database connection as ``ServiceUnavailable`` (503, ``Retry-After``), anything else as a
bug, ``InternalError`` (500, logged here once with its traceback). Under a dialect's paths the
last two take the dialect's own shape (:func:`register_error_renderer`). No exception leaves the
app for the server (:class:`AnswerEveryError`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kassa.kit import dberrors
from kassa.kit.errors import (
    FieldError,
    InternalError,
    KassaError,
    MethodNotAllowed,
    NotFound,
    ServiceUnavailable,
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


def problem_document(error: KassaError) -> dict[str, Any]:
    """``error``'s problem document, as :func:`problem_json` writes it."""
    return problem_body(
        error.code, error.status, error.title, error.detail, error.errors, error.extra
    )


def problem_json(error: KassaError) -> bytes:
    return orjson.dumps(problem_document(error))


BUG_DETAIL = "Kassa hit a bug; it was logged."


def render_error(path: str, error: KassaError) -> Rendered:
    """The answer to a request for ``path`` that failed with ``error``: an outage or a bug in
    the shape of the dialect that serves ``path``, if one registered a renderer; otherwise the
    native problem document. A 503 always says when to try again (``Retry-After``)."""
    render = renderer_for(path) if isinstance(error, ServiceUnavailable | InternalError) else None
    if render is not None:
        status, media_type, body, headers = render(error)
    else:
        status, media_type, body = error.status, PROBLEM_MEDIA_TYPE, problem_json(error)
        headers = [("WWW-Authenticate", "Bearer")] if error.status == 401 else []
    if isinstance(error, ServiceUnavailable) and not any(
        name.lower() == "retry-after" for name, _ in headers
    ):
        headers = [*headers, ("Retry-After", str(error.retry_after))]
    return status, media_type, body, headers


def render_exception(path: str, method: str, error: Exception) -> Rendered:
    """The answer to a request that raised ``error``: a ``KassaError`` as itself, a lost
    database connection as ``ServiceUnavailable``, anything else as a bug, which is logged
    here (once, with its traceback) and answered as ``InternalError``."""
    if not isinstance(error, KassaError):
        translated = dberrors.translate(error)
        if translated is None:
            log.error("unhandled_error", path=path, method=method, exc_info=error)
            translated = InternalError(BUG_DETAIL)
        error = translated
    return render_error(path, error)


def problem_response(error: KassaError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        problem_json(error),
        status_code=error.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=headers,
    )


def _response(rendered: Rendered) -> Response:
    status, media_type, body, headers = rendered
    return Response(body, status_code=status, media_type=media_type, headers=dict(headers))


async def _kassa_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, KassaError)
    return _response(render_error(request.url.path, error))


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
        allowed = _allowed_methods(request)
        return problem_response(
            MethodNotAllowed(f"{request.method} is not allowed here; {allowed} is"),
            {"Allow": allowed},
        )
    body = problem_body(
        "http_error", error.status_code, str(error.detail), str(error.detail), [], {}
    )
    return Response(
        orjson.dumps(body), status_code=error.status_code, media_type=PROBLEM_MEDIA_TYPE
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route of this path answers (each route holds one operation, so the
    route that refused knows only its own)."""
    methods = {
        method
        for method in ("DELETE", "GET", "PATCH", "POST", "PUT")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    }
    if "GET" in methods:
        methods.add("HEAD")
    return ", ".join(sorted(methods))


async def _bug(request: Request, error: Exception) -> Response:
    # Starlette's last resort, for an error in a middleware outside AnswerEveryError.
    return _response(render_exception(request.url.path, request.method, error))


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KassaError, _kassa_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _bug)
    app.add_middleware(AnswerEveryError)


class AnswerEveryError:
    """ASGI middleware that answers every exception no handler took, and lets none go on.

    Starlette's ``ServerErrorMiddleware`` (outside this one) answers 500 too, but then raises
    the error again for the server to log: uvicorn logs a second traceback and closes the
    connection, so a keep-alive client's next request on it fails. Here the error is answered
    (:func:`render_exception`) and the connection stays usable. If the answer had already
    begun, there is nothing more to say: the error is logged and the server, seeing the answer
    unfinished, closes the connection."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_noting_start(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_noting_start)
        except ClientDisconnect:
            return  # the client left while its body was read: no one to answer
        except Exception as error:  # noqa: BLE001 - answered: a bug as a 500, logged
            status, media_type, body, headers = render_exception(
                scope["path"], scope["method"], error
            )
            if started:
                return
            raw_headers = [(name.lower().encode(), value.encode()) for name, value in headers]
            raw_headers += [
                (b"content-type", media_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ]
            await send({"type": "http.response.start", "status": status, "headers": raw_headers})
            await send({"type": "http.response.body", "body": body})
