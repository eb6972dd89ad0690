"""Webhook endpoints and the deliveries of events to them (the worker is in ``worker``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.kit.errors import NotFound, ValidationFailed
from kassa.kit.pagination import Page, split_page
from kassa.kit.secretbox import SecretBox
from kassa.webhooks import repository
from kassa.webhooks.errors import EndpointDisabled, NoWebhookEndpoint
from kassa.webhooks.repository import Endpoint, EventRef
from kassa.webhooks.schemas import (
    ALL_EVENTS,
    FORMAT_EVENTS,
    AttemptOut,
    DeletedEndpoint,
    DeliveryList,
    DeliveryOut,
    EndpointChange,
    EndpointOut,
    EndpointWithSecret,
    NewEndpoint,
)
from kassa.webhooks.signing import new_signing_secret
from kassa.webhooks.tables import DELIVERY_PENDING

# After a roll the old secret signs beside the new one this long, so receivers can switch.
PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)


def wants(event_types: list[str], event_type: str) -> bool:
    return ALL_EVENTS in event_types or event_type in event_types


async def create_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, body: NewEndpoint, box: SecretBox, now: datetime
) -> EndpointWithSecret:
    secret = new_signing_secret()
    endpoint_id = uuid.uuid4()
    await repository.insert_endpoint(
        conn,
        {
            "id": endpoint_id,
            "tenant_id": tenant_id,
            "url": body.url,
            "description": body.description,
            "event_types": body.event_types,
            "enabled": body.enabled,
            "format": body.format,
            "secret": box.seal(secret.encode()),
            "created_at": now,
        },
    )
    endpoint = await get_endpoint(conn, tenant_id, endpoint_id)
    return EndpointWithSecret(**endpoint.model_dump(), secret=secret)


async def _endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> Endpoint:
    found = await repository.live_endpoint(conn, tenant_id, endpoint_id)
    if found is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return found


async def get_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointOut:
    return EndpointOut.from_row(await _endpoint(conn, tenant_id, endpoint_id))


async def list_endpoints(
    conn: AsyncConnection, tenant_id: uuid.UUID, *, starting_after: uuid.UUID | None, limit: int
) -> Page[EndpointOut]:
    after = None if starting_after is None else await _endpoint(conn, tenant_id, starting_after)
    found = await repository.list_endpoints(conn, tenant_id, after, limit + 1)
    page, has_more = split_page(found, limit)
    return Page[EndpointOut](data=[EndpointOut.from_row(row) for row in page], has_more=has_more)


async def change_endpoint(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    change: EndpointChange,
    now: datetime,
) -> EndpointOut:
    """Change an endpoint's URL, event types, description or state. Enabling clears the reason
    Kassa disabled it for; disabling cancels its pending deliveries (events from now on make
    none; ``redeliver`` sends again once it is enabled); event types it no longer takes cancel
    their pending deliveries too."""
    endpoint = await _endpoint(conn, tenant_id, endpoint_id)
    allowed = FORMAT_EVENTS.get(endpoint.format)
    if allowed is not None and change.event_types is not None:
        if change.event_types == [ALL_EVENTS]:
            change.event_types = sorted(allowed)
        elif not set(change.event_types) <= allowed:
            message = f"a {endpoint.format} endpoint takes only {', '.join(sorted(allowed))}"
            raise ValidationFailed(
                message,
                errors=[{"field": "event_types", "code": "format_event_types", "message": message}],
            )
    values = change.model_dump(include=change.model_fields_set)
    if change.enabled is not None:
        values["disabled_reason"] = None
    await repository.update_endpoint(conn, tenant_id, endpoint_id, values)
    if change.enabled is False:
        await repository.cancel_pending(conn, endpoint_id, now)
    elif change.event_types is not None and ALL_EVENTS not in change.event_types:
        await repository.cancel_pending(conn, endpoint_id, now, unless_types=change.event_types)
    return await get_endpoint(conn, tenant_id, endpoint_id)


async def delete_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, now: datetime
) -> DeletedEndpoint:
    """Delete an endpoint: nothing more is sent to it; its deliveries' history stays."""
    await _endpoint(conn, tenant_id, endpoint_id)
    values = {"deleted_at": now, "enabled": False, "previous_secret": None}
    await repository.update_endpoint(conn, tenant_id, endpoint_id, values)
    await repository.cancel_pending(conn, endpoint_id, now)
    return DeletedEndpoint(id=endpoint_id)


async def roll_secret(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    box: SecretBox,
    now: datetime,
) -> EndpointWithSecret:
    """A new signing secret; the one it replaces keeps signing too for 24 hours."""
    endpoint = await _endpoint(conn, tenant_id, endpoint_id)
    secret = new_signing_secret()
    values = {
        "secret": box.seal(secret.encode()),
        "previous_secret": endpoint.secret,
        "previous_secret_expires_at": now + PREVIOUS_SECRET_LIFETIME,
    }
    await repository.update_endpoint(conn, tenant_id, endpoint_id, values)
    return EndpointWithSecret(**EndpointOut.from_row(endpoint).model_dump(), secret=secret)


async def _event(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> EventRef:
    found = await repository.event_ref(conn, tenant_id, event_id)
    if found is None:
        raise NotFound(f"event {event_id} not found")
    return found


async def deliveries(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> DeliveryList:
    """Each endpoint's delivery of an event, with every attempt, oldest first."""
    event = await _event(conn, tenant_id, event_id)
    found = await repository.deliveries_of(conn, tenant_id, event.seq)
    attempts: dict[int, list[AttemptOut]] = {delivery.seq: [] for delivery in found}
    for attempt in await repository.attempts_of(conn, list(attempts)):
        attempts[attempt.delivery_seq].append(
            AttemptOut(
                attempt=attempt.attempt,
                started_at=attempt.started_at,
                status_code=attempt.status_code,
                error=attempt.error,
                latency_ms=attempt.latency_ms,
                response_excerpt=attempt.response_excerpt,
                succeeded=attempt.succeeded,
            )
        )
    return DeliveryList(
        data=[
            DeliveryOut(
                event_id=event_id,
                endpoint_id=delivery.endpoint_id,
                url=delivery.url,
                status=delivery.status,
                next_attempt_at=(
                    delivery.next_attempt_at if delivery.status == DELIVERY_PENDING else None
                ),
                attempts=attempts[delivery.seq],
            )
            for delivery in found
        ]
    )


async def redeliver(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    event_id: uuid.UUID,
    endpoint_id: uuid.UUID | None,
    now: datetime,
) -> DeliveryList:
    """Send an event again now, with a fresh round of retries: to one endpoint, or to every
    enabled endpoint that takes its type (including ones made after the event)."""
    event = await _event(conn, tenant_id, event_id)
    if endpoint_id is not None:
        endpoint = await _endpoint(conn, tenant_id, endpoint_id)
        if not endpoint.enabled:
            raise EndpointDisabled(f"webhook endpoint {endpoint_id} is disabled")
        targets = [endpoint.id]
    else:
        enabled = await repository.enabled_endpoints(conn, tenant_id)
        targets = [target for target, types in enabled if wants(types, event.type)]
        if not targets:
            raise NoWebhookEndpoint(f"no enabled webhook endpoint takes {event.type} events")
    for target in targets:
        await repository.start_round(conn, tenant_id, event.seq, target, now)
    return await deliveries(conn, tenant_id, event_id)
