"""Webhook endpoints and the deliveries of events to them (the worker is in ``worker``)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.events.tables import events
from kassa.kit.errors import NotFound
from kassa.kit.pagination import Page, split_page
from kassa.webhooks.errors import EndpointDisabled, NoWebhookEndpoint
from kassa.webhooks.schemas import (
    ALL_EVENTS,
    AttemptOut,
    DeletedEndpoint,
    DeliveryList,
    DeliveryOut,
    EndpointChange,
    EndpointOut,
    EndpointWithSecret,
    NewEndpoint,
)
from kassa.webhooks.secrets import SecretBox, new_signing_secret
from kassa.webhooks.tables import (
    DELIVERY_CANCELED,
    DELIVERY_PENDING,
    webhook_attempts,
    webhook_deliveries,
    webhook_endpoints,
)

# After a roll the old secret signs beside the new one this long, so receivers can switch.
PREVIOUS_SECRET_LIFETIME = timedelta(hours=24)


def wants(event_types: list[str], event_type: str) -> bool:
    return ALL_EVENTS in event_types or event_type in event_types


def _live(tenant_id: uuid.UUID) -> Any:
    return (webhook_endpoints.c.tenant_id == tenant_id) & webhook_endpoints.c.deleted_at.is_(None)


async def create_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, body: NewEndpoint, box: SecretBox, now: datetime
) -> EndpointWithSecret:
    secret = new_signing_secret()
    endpoint_id = uuid.uuid4()
    await conn.execute(
        insert(webhook_endpoints).values(
            id=endpoint_id,
            tenant_id=tenant_id,
            url=body.url,
            description=body.description,
            event_types=body.event_types,
            enabled=body.enabled,
            secret=box.seal(secret.encode()),
            created_at=now,
        )
    )
    endpoint = await get_endpoint(conn, tenant_id, endpoint_id)
    return EndpointWithSecret(**endpoint.model_dump(), secret=secret)


async def _endpoint_row(conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(
            select(webhook_endpoints).where(_live(tenant_id), webhook_endpoints.c.id == endpoint_id)
        )
    ).first()
    if row is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return row


async def get_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID
) -> EndpointOut:
    return EndpointOut.from_row(await _endpoint_row(conn, tenant_id, endpoint_id))


async def list_endpoints(
    conn: AsyncConnection, tenant_id: uuid.UUID, *, starting_after: uuid.UUID | None, limit: int
) -> Page[EndpointOut]:
    order = tuple_(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
    statement = select(webhook_endpoints).where(_live(tenant_id))
    if starting_after is not None:
        after = await _endpoint_row(conn, tenant_id, starting_after)
        statement = statement.where(order < tuple_(after.created_at, after.id))
    rows = (
        await conn.execute(
            statement.order_by(
                webhook_endpoints.c.created_at.desc(), webhook_endpoints.c.id.desc()
            ).limit(limit + 1)
        )
    ).all()
    page, has_more = split_page(list(rows), limit)
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
    await _endpoint_row(conn, tenant_id, endpoint_id)
    values = change.model_dump(include=change.model_fields_set)
    if change.enabled is not None:
        values["disabled_reason"] = None
    await conn.execute(
        update(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id).values(**values)
    )
    if change.enabled is False:
        await cancel_pending(conn, endpoint_id, now)
    elif change.event_types is not None and ALL_EVENTS not in change.event_types:
        unwanted = (
            select(events.c.seq)
            .where(
                events.c.seq == webhook_deliveries.c.event_seq,
                events.c.type.not_in(change.event_types),
            )
            .exists()
        )
        await cancel_pending(conn, endpoint_id, now, unwanted)
    return await get_endpoint(conn, tenant_id, endpoint_id)


async def delete_endpoint(
    conn: AsyncConnection, tenant_id: uuid.UUID, endpoint_id: uuid.UUID, now: datetime
) -> DeletedEndpoint:
    """Delete an endpoint: nothing more is sent to it; its deliveries' history stays."""
    await _endpoint_row(conn, tenant_id, endpoint_id)
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(deleted_at=now, enabled=False, previous_secret=None)
    )
    await cancel_pending(conn, endpoint_id, now)
    return DeletedEndpoint(id=endpoint_id)


async def cancel_pending(
    conn: AsyncConnection, endpoint_id: uuid.UUID, now: datetime, *only: Any
) -> None:
    """Cancel the endpoint's pending deliveries (``only`` those meeting further conditions)."""
    await conn.execute(
        update(webhook_deliveries)
        .where(
            webhook_deliveries.c.endpoint_id == endpoint_id,
            webhook_deliveries.c.status == DELIVERY_PENDING,
            *only,
        )
        .values(status=DELIVERY_CANCELED, next_attempt_at=None, updated_at=now)
    )


async def roll_secret(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    box: SecretBox,
    now: datetime,
) -> EndpointWithSecret:
    """A new signing secret; the one it replaces keeps signing too for 24 hours."""
    row = await _endpoint_row(conn, tenant_id, endpoint_id)
    secret = new_signing_secret()
    await conn.execute(
        update(webhook_endpoints)
        .where(webhook_endpoints.c.id == endpoint_id)
        .values(
            secret=box.seal(secret.encode()),
            previous_secret=row.secret,
            previous_secret_expires_at=now + PREVIOUS_SECRET_LIFETIME,
        )
    )
    return EndpointWithSecret(**EndpointOut.from_row(row).model_dump(), secret=secret)


async def _event_row(conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(
            select(events.c.seq, events.c.type).where(
                events.c.tenant_id == tenant_id, events.c.id == event_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"event {event_id} not found")
    return row


async def deliveries(
    conn: AsyncConnection, tenant_id: uuid.UUID, event_id: uuid.UUID
) -> DeliveryList:
    """Each endpoint's delivery of an event, with every attempt, oldest first."""
    event = await _event_row(conn, tenant_id, event_id)
    rows = (
        await conn.execute(
            select(webhook_deliveries, webhook_endpoints.c.url)
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .where(
                webhook_deliveries.c.tenant_id == tenant_id,
                webhook_deliveries.c.event_seq == event.seq,
            )
            .order_by(webhook_deliveries.c.seq)
        )
    ).all()
    attempts: dict[int, list[AttemptOut]] = {row.seq: [] for row in rows}
    if rows:
        for attempt in (
            await conn.execute(
                select(webhook_attempts)
                .where(webhook_attempts.c.delivery_seq.in_(list(attempts)))
                .order_by(webhook_attempts.c.delivery_seq, webhook_attempts.c.attempt)
            )
        ).all():
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
                endpoint_id=row.endpoint_id,
                url=row.url,
                status=row.status,
                next_attempt_at=row.next_attempt_at if row.status == DELIVERY_PENDING else None,
                attempts=attempts[row.seq],
            )
            for row in rows
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
    event = await _event_row(conn, tenant_id, event_id)
    if endpoint_id is not None:
        row = await _endpoint_row(conn, tenant_id, endpoint_id)
        if not row.enabled:
            raise EndpointDisabled(f"webhook endpoint {endpoint_id} is disabled")
        targets = [row.id]
    else:
        rows = (
            await conn.execute(
                select(webhook_endpoints.c.id, webhook_endpoints.c.event_types).where(
                    _live(tenant_id), webhook_endpoints.c.enabled
                )
            )
        ).all()
        targets = [row.id for row in rows if wants(list(row.event_types), event.type)]
        if not targets:
            raise NoWebhookEndpoint(f"no enabled webhook endpoint takes {event.type} events")
    for target in targets:
        changed = await conn.execute(
            update(webhook_deliveries)
            .where(
                webhook_deliveries.c.event_seq == event.seq,
                webhook_deliveries.c.endpoint_id == target,
            )
            .values(
                status=DELIVERY_PENDING,
                round_start=webhook_deliveries.c.attempts,
                next_attempt_at=now,
                updated_at=now,
            )
        )
        if not changed.rowcount:
            await conn.execute(
                insert(webhook_deliveries).values(
                    tenant_id=tenant_id,
                    event_seq=event.seq,
                    endpoint_id=target,
                    status=DELIVERY_PENDING,
                    attempts=0,
                    round_start=0,
                    next_attempt_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
    return await deliveries(conn, tenant_id, event_id)
