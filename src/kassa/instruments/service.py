"""Payment instruments: create (checked and masked), list, get, verify, delete."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.instruments import repository
from kassa.instruments.repository import Instrument
from kassa.instruments.schemas import DeletedInstrument, InstrumentOut, NewInstrument
from kassa.instruments.validation import mask
from kassa.kit.errors import KassaError, NotFound, ValidationFailed
from kassa.kit.pagination import Page, split_page
from kassa.kit.secretbox import SecretBox, SecretKeyError

log = structlog.get_logger("kassa.instruments")


async def create(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    body: NewInstrument,
    box: SecretBox,
    now: datetime,
) -> InstrumentOut:
    made, _ = await _create(conn, tenant_id, customer_id, body, box, now, once=False)
    return made


async def create_once(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    body: NewInstrument,
    box: SecretBox,
    now: datetime,
) -> tuple[InstrumentOut, bool]:
    """As ``create``, unless the customer has this instrument already (the same type, number and
    details, by fingerprint): then that one, and False. A form sent twice adds one instrument
    (the caller serialises concurrent sends of one form)."""
    return await _create(conn, tenant_id, customer_id, body, box, now, once=True)


async def _create(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    body: NewInstrument,
    box: SecretBox,
    now: datetime,
    *,
    once: bool,
) -> tuple[InstrumentOut, bool]:
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
    key = await _fingerprint_key(conn, tenant_id, box)
    number_print = fingerprint(key, masked.identity)
    if once:
        for same in await repository.live_with_fingerprint(
            conn, tenant_id, customer_id, body.type, number_print
        ):
            if same.details == masked.details:
                return await get(conn, tenant_id, customer_id, same.id), False
    instrument_id = uuid.uuid4()
    await repository.insert_instrument(
        conn,
        {
            "id": instrument_id,
            "tenant_id": tenant_id,
            "customer_id": customer_id,
            "type": body.type,
            "status": "unverified",
            "holder_name": body.holder_name,
            "display": masked.display,
            "last4": masked.last4,
            "details": masked.details,
            "fingerprint": number_print,
            "created_at": now,
        },
    )
    return await get(conn, tenant_id, customer_id, instrument_id), True


def fingerprint(key: bytes, identity: str) -> str:
    """The same number gives the same fingerprint under one key; without the key, the
    fingerprint tells nothing (a plain hash of a card number is reversed by trying them all)."""
    return hmac.new(key, identity.encode(), hashlib.sha256).hexdigest()[:32]


async def _fingerprint_key(conn: AsyncConnection, tenant_id: uuid.UUID, box: SecretBox) -> bytes:
    """The tenant's fingerprint key, made on first use. Of two requests making it at once, the
    second's update finds it made (the row is locked meanwhile) and reads the first's."""
    sealed = await repository.fingerprint_key(conn, tenant_id)
    if sealed is None:
        await repository.set_fingerprint_key(conn, tenant_id, box.seal(secrets.token_bytes(32)))
        sealed = await repository.fingerprint_key(conn, tenant_id)
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


async def _instrument(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, instrument_id: uuid.UUID
) -> Instrument:
    found = await repository.live_instrument(conn, tenant_id, customer_id, instrument_id)
    if found is None:
        raise NotFound(f"payment instrument {instrument_id} not found")
    return found


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, instrument_id: uuid.UUID
) -> InstrumentOut:
    return InstrumentOut.from_row(await _instrument(conn, tenant_id, customer_id, instrument_id))


async def find(
    conn: AsyncConnection, tenant_id: uuid.UUID, instrument_id: uuid.UUID
) -> InstrumentOut | None:
    """Any live instrument of the tenant (payouts name it without its customer)."""
    found = await repository.find_instrument(conn, tenant_id, instrument_id)
    return InstrumentOut.from_row(found) if found is not None else None


async def list_instruments(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, limit: int
) -> Page[InstrumentOut]:
    found = await repository.list_instruments(conn, tenant_id, customer_id, limit + 1)
    page, has_more = split_page(found, limit)
    return Page[InstrumentOut](data=[InstrumentOut.from_row(r) for r in page], has_more=has_more)


async def verify(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    instrument_id: uuid.UUID,
    now: datetime,
) -> InstrumentOut:
    instrument = await _instrument(conn, tenant_id, customer_id, instrument_id)
    if instrument.status != "verified":
        values = {"status": "verified", "verified_at": now}
        await repository.update_instrument(conn, tenant_id, instrument_id, values)
    return await get(conn, tenant_id, customer_id, instrument_id)


async def delete(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    instrument_id: uuid.UUID,
    now: datetime,
) -> DeletedInstrument:
    await _instrument(conn, tenant_id, customer_id, instrument_id)
    await repository.update_instrument(conn, tenant_id, instrument_id, {"deleted_at": now})
    return DeletedInstrument(id=instrument_id)


async def types_of(
    conn: AsyncConnection, tenant_id: uuid.UUID, instrument_ids: list[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """Each named instrument's type (deleted ones too): how payouts show their instrument."""
    return await repository.instrument_types(conn, tenant_id, sorted(set(instrument_ids)))
