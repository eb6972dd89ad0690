"""``/v1/webhook-endpoints``, and each event's deliveries (``/v1/events/{id}/deliveries``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.deps import WebhooksManage
from kassa.idempotency.http import respond
from kassa.kit.http import body_schema, json_response, parse_json, read_body, refuse_unknown_query
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.kit.pagination import DEFAULT_LIMIT, Limit, Page, StartingAfter
from kassa.state import app_state
from kassa.webhooks import service, urls
from kassa.webhooks.schemas import (
    DeletedEndpoint,
    DeliveryList,
    EndpointChange,
    EndpointOut,
    EndpointWithSecret,
    NewEndpoint,
    RedeliverIn,
)

router = APIRouter(prefix="/v1", tags=["webhooks"], dependencies=[Depends(refuse_unknown_query)])


@router.post(
    "/webhook-endpoints",
    openapi_extra=body_schema(NewEndpoint),
    **doc(
        EndpointWithSecret,
        201,
        (
            422,
            "the URL is not https or not a public address (`invalid_webhook_url`,"
            " `webhook_url_not_allowed`)",
        ),
        summary="Create a webhook endpoint",
    ),
)
async def create_endpoint(request: Request, principal: WebhooksManage) -> Response:
    """Add an endpoint; the answer shows its signing secret, this once."""
    raw = await read_body(request)
    body = parse_json(raw, NewEndpoint)
    state = app_state(request)
    await urls.check(body.url, state.settings.webhook_allowed_hosts)
    now = state.clock.now()

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        endpoint = await service.create_endpoint(conn, principal.tenant_id, body, state.box, now)
        return 201, endpoint

    return await respond(
        request, state, principal, raw, now, work, sealed=True, collection="/v1/webhook-endpoints"
    )


@router.get(
    "/webhook-endpoints", **doc(Page[EndpointOut], 200, 404, 422, summary="List webhook endpoints")
)
async def list_endpoints(
    request: Request,
    principal: WebhooksManage,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    """The tenant's webhook endpoints, newest first (without their secrets)."""
    state = app_state(request)
    after = parse_id(starting_after, "webhook endpoint") if starting_after else None
    async with state.db.read() as conn:
        page = await service.list_endpoints(
            conn, principal.tenant_id, starting_after=after, limit=limit
        )
    return json_response(page)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    **doc(EndpointOut, 200, 404, summary="Get a webhook endpoint"),
)
async def get_endpoint(request: Request, endpoint_id: str, principal: WebhooksManage) -> Response:
    """One webhook endpoint (without its secret)."""
    state = app_state(request)
    async with state.db.read() as conn:
        endpoint = await service.get_endpoint(
            conn, principal.tenant_id, parse_id(endpoint_id, "webhook endpoint")
        )
    return json_response(endpoint)


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    openapi_extra=body_schema(EndpointChange),
    **doc(EndpointOut, 200, 404, 422, summary="Change a webhook endpoint"),
)
async def change_endpoint(
    request: Request, endpoint_id: str, principal: WebhooksManage
) -> Response:
    """Change the URL, event types, description, or enable or disable the endpoint (e.g. again
    after Kassa disabled it on a 410); members left out stay as they are."""
    raw = await read_body(request)
    body = parse_json(raw, EndpointChange)
    state = app_state(request)
    if body.url is not None:
        await urls.check(body.url, state.settings.webhook_allowed_hosts)
    now, endpoint = state.clock.now(), parse_id(endpoint_id, "webhook endpoint")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await service.change_endpoint(conn, principal.tenant_id, endpoint, body, now)

    return await respond(request, state, principal, raw, now, work)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    **doc(DeletedEndpoint, 200, 404, summary="Delete a webhook endpoint"),
)
async def delete_endpoint(
    request: Request, endpoint_id: str, principal: WebhooksManage
) -> Response:
    """Delete an endpoint: nothing more is sent to it; pending deliveries are canceled."""
    raw = await read_body(request)
    state = app_state(request)
    now, endpoint = state.clock.now(), parse_id(endpoint_id, "webhook endpoint")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await service.delete_endpoint(conn, principal.tenant_id, endpoint, now)

    return await respond(request, state, principal, raw, now, work)


@router.post(
    "/webhook-endpoints/{endpoint_id}/roll-secret",
    **doc(EndpointWithSecret, 200, 404, summary="Roll a webhook endpoint's secret"),
)
async def roll_secret(request: Request, endpoint_id: str, principal: WebhooksManage) -> Response:
    """A new signing secret, shown this once; the old one keeps signing too for 24 hours."""
    raw = await read_body(request)
    state = app_state(request)
    now, endpoint = state.clock.now(), parse_id(endpoint_id, "webhook endpoint")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        rolled = await service.roll_secret(conn, principal.tenant_id, endpoint, state.box, now)
        return 200, rolled

    return await respond(request, state, principal, raw, now, work, sealed=True)


@router.get(
    "/events/{event_id}/deliveries", **doc(DeliveryList, 200, 404, summary="An event's deliveries")
)
async def list_deliveries(request: Request, event_id: str, principal: WebhooksManage) -> Response:
    """Each endpoint's delivery of the event, with every attempt (status, latency, excerpt)."""
    state = app_state(request)
    async with state.db.read() as conn:
        found = await service.deliveries(conn, principal.tenant_id, parse_id(event_id, "event"))
    return json_response(found)


@router.post(
    "/events/{event_id}/redeliver",
    openapi_extra=body_schema(RedeliverIn, required=False),
    **doc(
        DeliveryList,
        202,
        404,
        (
            409,
            "no enabled endpoint takes the event, or the one named is disabled"
            " (`no_webhook_endpoint`, `webhook_endpoint_disabled`)",
        ),
        422,
        summary="Redeliver an event",
    ),
)
async def redeliver(request: Request, event_id: str, principal: WebhooksManage) -> Response:
    """Send the event again now, with a fresh round of retries (the body is optional)."""
    raw = await read_body(request)
    body = parse_json(raw, RedeliverIn, empty_ok=True)
    state = app_state(request)
    now, event = state.clock.now(), parse_id(event_id, "event")

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        found = await service.redeliver(conn, principal.tenant_id, event, body.endpoint_id, now)
        return 202, found

    return await respond(request, state, principal, raw, now, work)
