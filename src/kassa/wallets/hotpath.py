"""The hot path's HTTP front: deposits and immediate withdrawals served beside the framework.

At a thousand requests a second per worker, FastAPI's layers (middleware, routing, dependency
solving, Request and Response objects) cost more CPU than parsing, checking and posting the
withdrawal itself. ``HotPath`` wraps the FastAPI app and serves ``POST
/v1/wallets/{id}/deposits`` and ``/withdrawals`` directly, through the same functions as the
FastAPI routes (authorisation, body parsing, the wallets service, problem documents), so both
answer alike. Routes marked ``kit.http.direct`` (the dialects' deposits and withdrawals) are served
here too: their endpoint is called at once with the request and its path parameters, without
FastAPI's middleware, routing and dependency solving, and what it raises is answered as the app
answers it. Every other request, and the lifespan, goes to FastAPI.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import parse_qs

import structlog
from fastapi import FastAPI, Request, Response
from fastapi.routing import APIRoute, APIRouter
from starlette.requests import ClientDisconnect

from kassa.auth.deps import authorize
from kassa.kit import metrics
from kassa.kit.errors import PayloadTooLarge
from kassa.kit.http import (
    MAX_BODY_BYTES,
    bearer_token,
    check_media_type,
    is_direct,
    raise_unknown,
)
from kassa.kit.problem import render_exception
from kassa.state import AppState
from kassa.wallets import movements
from kassa.wallets.endpoints import post_money

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_ROUTE = re.compile(r"/v1/wallets/([^/]+)/(deposits|withdrawals)")
_ROUTES = {
    "deposits": (movements.DEPOSIT, "wallets:write"),
    "withdrawals": (movements.WITHDRAWAL, "withdrawals:write"),
}
_TEMPLATES = {name: f"/v1/wallets/{{wallet_id}}/{name}" for name in _ROUTES}


REQUEST_ID = b"request-id"
access = structlog.get_logger("kassa.access")


def new_request_id() -> str:
    """The id every answer carries in ``Request-Id`` and every log line of its request shows,
    so that a merchant's support ticket can be matched to the server's log."""
    return f"req_{secrets.token_hex(12)}"


class _ClientGone(Exception):
    """The client disconnected before its request body arrived whole."""


class HotPath:
    """ASGI wrapper: the two hot routes here, everything else to ``app``; every HTTP request
    is counted and timed for ``/metrics`` by its route template."""

    def __init__(self, app: FastAPI, state: AppState, routers: Sequence[APIRouter] = ()) -> None:
        """``routers``: those included in ``app`` (at their own prefix), whose ``direct``
        routes are served here."""
        self.app = app
        self.state = state
        self.direct = [
            route
            for router in routers
            for route in router.routes
            if isinstance(route, APIRoute)
            and is_direct(route.endpoint)
            and route.methods == {"POST"}
        ]

    def lifespan(self) -> AbstractAsyncContextManager[Any]:
        """The app's start-up and shut-down, for running it in-process (tests)."""
        return self.app.router.lifespan_context(self.app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        request_id = new_request_id()
        with structlog.contextvars.bound_contextvars(request_id=request_id):
            if not self.state.settings.access_log:
                await self._dispatch(scope, receive, send, request_id.encode(), began)
                return
            status, route = 500, metrics.UNMATCHED

            async def send_and_note(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                route = await self._dispatch(
                    scope, receive, send_and_note, request_id.encode(), began
                )
            finally:
                # The route's template, not the path or its query: those hold the client's
                # values (customer ids, filters), which are never logged.
                access.info(
                    "request",
                    method=scope["method"],
                    route=route,
                    status=status,
                    ms=round((time.perf_counter() - began) * 1000, 2),
                )

    async def _dispatch(
        self, scope: Scope, receive: Receive, send: Send, request_id: bytes, began: float
    ) -> str:
        """Answer the request; the template of the route that answered it."""
        if scope["method"] == "POST":
            match = _ROUTE.fullmatch(scope["path"])
            if match is not None:
                status = await self._serve(scope, receive, send, match[1], match[2], request_id)
                route = _TEMPLATES[match[2]]
                metrics.observe_request("POST", route, status, time.perf_counter() - began)
                return route
            for direct_route in self.direct:
                found = direct_route.path_regex.match(scope["path"])
                if found is not None:
                    params = found.groupdict()
                    status = await self._serve_direct(
                        scope, receive, send, direct_route, params, request_id
                    )
                    template = direct_route.path
                    metrics.observe_request("POST", template, status, time.perf_counter() - began)
                    return template
        answered = 500  # unless the app starts an answer
        head = scope["method"] == "HEAD"
        if head:  # HEAD is GET without the body, on every route that answers GET
            scope = {**scope, "method": "GET"}

        async def send_and_note(message: Message) -> None:
            nonlocal answered
            if message["type"] == "http.response.start":
                answered = message["status"]
                message = {**message, "headers": [*message["headers"], (REQUEST_ID, request_id)]}
            elif head and message["type"] == "http.response.body":
                message = {**message, "body": b""}
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # FastAPI leaves the route it matched in the scope.
            route = getattr(scope.get("route"), "path", metrics.UNMATCHED)
            method = "HEAD" if head else scope["method"]
            metrics.observe_request(method, route, answered, time.perf_counter() - began)
        return route

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        wallet_id: str,
        route: str,
        request_id: bytes,
    ) -> int:
        """Answer one deposit or withdrawal; its status code (499 if the client left)."""
        movement, scope_needed = _ROUTES[route]
        headers: list[tuple[bytes, bytes]] = [(REQUEST_ID, request_id)]
        try:
            authorization, declared, key, content_type = _headers(scope)
            if scope["query_string"]:  # these two routes take no query parameter
                names = parse_qs(scope["query_string"].decode("latin-1"), keep_blank_values=True)
                raise_unknown(names, frozenset())
            token = bearer_token(authorization)
            principal = await authorize(self.state.authenticator, token, scope_needed)
            raw = await _read_body(receive, declared)
            if raw.strip():
                check_media_type(content_type)
            answer = await post_money(
                self.state, principal, movement, wallet_id, raw, key, scope["path"]
            )
            status, media_type, body = answer.status, answer.media_type, answer.body
            headers += [(name.encode(), value.encode()) for name, value in answer.headers]
        except _ClientGone:
            return 499
        except Exception as error:  # noqa: BLE001 - answered as the FastAPI app answers it
            status, media_type, body, extra = render_exception(scope["path"], "POST", error)
            headers += [(name.lower().encode(), value.encode()) for name, value in extra]
        headers += [
            (b"content-type", media_type.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
        return status

    async def _serve_direct(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: APIRoute,
        params: dict[str, str],
        request_id: bytes,
    ) -> int:
        """Answer a request for a ``direct`` route; its status code (499 if the client left)."""
        scope = {**scope, "app": self.app, "path_params": params, "route": route}
        try:
            response: Response = await route.endpoint(Request(scope, receive), **params)
        except ClientDisconnect:
            return 499
        except Exception as error:  # noqa: BLE001 - answered as the FastAPI app answers it
            status, media_type, body, extra = render_exception(scope["path"], "POST", error)
            response = Response(body, status, dict(extra), media_type)
        headers = [*response.raw_headers, (REQUEST_ID, request_id)]
        status = response.status_code
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})
        return status


def _headers(scope: Scope) -> tuple[str | None, int | None, str | None, str | None]:
    """Authorization, Content-Length, Idempotency-Key and Content-Type, read as Starlette
    reads them."""
    authorization = declared = key = content_type = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"content-length":
            declared = int(value) if value.isdigit() else None
        elif name == b"idempotency-key":
            key = value.decode("latin-1")
        elif name == b"content-type":
            content_type = value.decode("latin-1")
    return authorization, declared, key, content_type


async def _read_body(receive: Receive, declared: int | None) -> bytes:
    if declared is not None and declared > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        body += message.get("body", b"")
        if len(body) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
        if not message.get("more_body", False):
            return bytes(body)
