"""``/v1/events``: what changed, newest first, as webhooks send it."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from kassa.auth.deps import EventsRead
from kassa.events import service
from kassa.events.schemas import EventOut, EventType
from kassa.kit.http import json_response, refuse_unknown_query
from kassa.kit.ids import parse_id
from kassa.kit.openapi import doc
from kassa.kit.pagination import DEFAULT_LIMIT, Limit, Page, StartingAfter
from kassa.state import app_state

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(refuse_unknown_query)])


@router.get("/events", **doc(Page[EventOut], 200, 404, 422, summary="List events"))
async def list_events(
    request: Request,
    principal: EventsRead,
    type: Annotated[EventType | None, Query(description="only events of this type")] = None,
    limit: Limit = DEFAULT_LIMIT,
    starting_after: StartingAfter = None,
) -> Response:
    """Every state change of the tenant's wallets and payouts, newest first, as webhooks send
    them; optionally of one type."""
    state = app_state(request)
    after = parse_id(starting_after, "event") if starting_after else None
    async with state.db.read() as conn:
        page = await service.list_events(
            conn, principal.tenant_id, type_=type, starting_after=after, limit=limit
        )
    return json_response(page)


@router.get("/events/{event_id}", **doc(EventOut, 200, 404, summary="Get an event"))
async def get_event(request: Request, event_id: str, principal: EventsRead) -> Response:
    """One event, with the object it is about as it was then."""
    state = app_state(request)
    async with state.db.read() as conn:
        event = await service.get_event(conn, principal.tenant_id, parse_id(event_id, "event"))
    return json_response(event)
