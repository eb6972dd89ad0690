"""Payment instruments: create (checked and masked), list, get, verify, delete."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.tables import tenants
from kassa.instruments.schemas import DeletedInstrument, InstrumentOut, NewInstrument
from kassa.instruments.tables import payment_instruments
from kassa.instruments.validation import mask
from kassa.kit.errors import KassaError, NotFound, ValidationFailed
from kassa.kit.pagination import Page, split_page
from kassa.webhooks.secrets import SecretBox, SecretKeyError

log = structlog.get_logger("kassa.instruments")


async def create(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    body: NewInstrument,
    box: SecretBox,
    now: datetime,
) -> InstrumentOut:
    stray = body.stray_fields()
    if stray:
        raise ValidationFailed(
            f"{body.type} takes no {', '.join(stray)}",
            errors=[
                {"field": name, "code": "not_allowed", "message": "not for this type"}
                for name in stray
            ],
        )
    masked = mask(body.type_fields(), body.type, now)
    instrument_id = uuid.uuid4()
    await conn.execute(
        insert(payment_instruments).values(
            id=instrument_id,
            tenant_id=tenant_id,
            customer_id=customer_id,
            type=body.type,
            status="unverified",
            holder_name=body.holder_name,
            display=masked.display,
            last4=masked.last4,
            details=masked.details,
            fingerprint=fingerprint(await _fingerprint_key(conn, tenant_id, box), masked.identity),
            created_at=now,
        )
    )
    return await get(conn, tenant_id, customer_id, instrument_id)


def fingerprint(key: bytes, identity: str) -> str:
    """The same number gives the same fingerprint under one key; without the key, the
    fingerprint tells nothing (a plain hash of a card number is reversed by trying them all)."""
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()[:32]


async def _fingerprint_key(conn: AsyncConnection, tenant_id: uuid.UUID, box: SecretBox) -> bytes:
    """The tenant's fingerprint key, made on first use. Of two requests making it at once, the
    second's update finds it made (the row is locked meanwhile) and reads the first's."""
    sealed = await conn.scalar(select(tenants.c.fingerprint_key).where(tenants.c.id == tenant_id))
    if sealed is None:
        await conn.execute(
            update(tenants)
            .where(tenants.c.id == tenant_id, tenants.c.fingerprint_key.is_(None))
            .values(fingerprint_key=box.seal(secrets.token_bytes(32)))
        )
        sealed = await conn.scalar(
            select(tenants.c.fingerprint_key).where(tenants.c.id == tenant_id)
        )
    assert sealed is not None
    try:
        return box.open(sealed)
    except SecretKeyError:
        log.error("fingerprint_key_does_not_open", tenant_id=str(tenant_id))
        raise SecretsUnavailable(
            "Kassa cannot open the tenant's fingerprint key with its KASSA_SECRET_KEY; "
            "the operator must restore the key it was made with"
        ) from None


class SecretsUnavailable(KassaError):
    code = "secrets_unavailable"
    status = 503
    title = "Kassa cannot open its stored secrets"


def _live(tenant_id: uuid.UUID, customer_id: str) -> Any:
    return (
        (payment_instruments.c.tenant_id == tenant_id)
        & (payment_instruments.c.customer_id == customer_id)
        & payment_instruments.c.deleted_at.is_(None)
    )


async def _row(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, instrument_id: uuid.UUID
) -> Any:
    row = (
        await conn.execute(
            select(payment_instruments).where(
                _live(tenant_id, customer_id), payment_instruments.c.id == instrument_id
            )
        )
    ).first()
    if row is None:
        raise NotFound(f"payment instrument {instrument_id} not found")
    return row


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, instrument_id: uuid.UUID
) -> InstrumentOut:
    return InstrumentOut.from_row(await _row(conn, tenant_id, customer_id, instrument_id))


async def find(
    conn: AsyncConnection, tenant_id: uuid.UUID, instrument_id: uuid.UUID
) -> InstrumentOut | None:
    """Any live instrument of the tenant (payouts name it without its customer)."""
    row = (
        await conn.execute(
            select(payment_instruments).where(
                payment_instruments.c.tenant_id == tenant_id,
                payment_instruments.c.id == instrument_id,
                payment_instruments.c.deleted_at.is_(None),
            )
        )
    ).first()
    return InstrumentOut.from_row(row) if row is not None else None


async def list_instruments(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, limit: int
) -> Page[InstrumentOut]:
    rows = (
        await conn.execute(
            select(payment_instruments)
            .where(_live(tenant_id, customer_id))
            .order_by(payment_instruments.c.created_at.desc(), payment_instruments.c.id.desc())
            .limit(limit + 1)
        )
    ).all()
    page, has_more = split_page(list(rows), limit)
    return Page[InstrumentOut](data=[InstrumentOut.from_row(r) for r in page], has_more=has_more)


async def verify(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    instrument_id: uuid.UUID,
    now: datetime,
) -> InstrumentOut:
    row = await _row(conn, tenant_id, customer_id, instrument_id)
    if row.status != "verified":
        await conn.execute(
            update(payment_instruments)
            .where(payment_instruments.c.id == instrument_id)
            .values(status="verified", verified_at=now)
        )
    return await get(conn, tenant_id, customer_id, instrument_id)


async def delete(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    instrument_id: uuid.UUID,
    now: datetime,
) -> DeletedInstrument:
    await _row(conn, tenant_id, customer_id, instrument_id)
    await conn.execute(
        update(payment_instruments)
        .where(payment_instruments.c.id == instrument_id)
        .values(deleted_at=now)
    )
    return DeletedInstrument(id=instrument_id)
