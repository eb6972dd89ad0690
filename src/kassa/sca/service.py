"""SCA events and TOTP authenticators.

A payout that the tenant's policy says needs SCA does not move to PENDING until one of its SCA
events is COMPLETED: the first attempt to move it opens an event (``payout.sca_required``) and
answers it instead of moving. The event is completed by the customer's TOTP code (EMBEDDED) or
by the merchant's own verification reported with its key (OUTSOURCED); then the same status
change goes through. An event takes at most ``MAX_FAILED_ATTEMPTS`` wrong codes, then fails, and
expires after the policy's ``event_ttl_seconds``: either way a new move to PENDING opens a new one.
Nothing is held or moved before SCA is complete.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.service import Principal
from kassa.events import service as events
from kassa.kit.db import Database
from kassa.kit.errors import Forbidden, KassaError, NotFound
from kassa.kit.ids import new_id
from kassa.kit.secretbox import SecretBox
from kassa.sca import policy as sca_policy
from kassa.sca import repository, totp
from kassa.sca.errors import (
    ScaAlreadyEnrolled,
    ScaCodeInvalid,
    ScaEventCompleted,
    ScaEventExpired,
    ScaEventFailed,
    ScaNotEnrolled,
    ScaWrongVerification,
)
from kassa.sca.schemas import Attempt, ScaEventOut, TotpEnrolment, Verification

MAX_FAILED_ATTEMPTS = 3
ISSUER = "Kassa"


def shown(row: Row[Any], now: datetime) -> ScaEventOut:
    status = row.status
    if status == "PENDING" and now >= row.expires_at:
        status = "EXPIRED"
    ways = [Verification(method="OTP", channel="AUTHENTICATOR")] if row.mode == "EMBEDDED" else []
    return ScaEventOut(
        id=row.id,
        payout_id=row.payout_id,
        wallet_operation_id=row.payout_id,
        customer_id=row.customer_id,
        target_status=row.target_status,
        mode=row.mode,
        status=status,
        failed_attempts=row.failed_attempts,
        attempts_left=max(0, MAX_FAILED_ATTEMPTS - row.failed_attempts)
        if status == "PENDING"
        else 0,
        available_verifications=ways,
        created_at=row.created_at,
        expires_at=row.expires_at,
        completed_at=row.completed_at,
    )


async def event_for_pending(
    db: Database,
    principal: Principal,
    payout_id: uuid.UUID,
    customer_id: str,
    amount: int,
    currency: str,
    now: datetime,
) -> ScaEventOut | None:
    """None if the payout may move to PENDING now (no SCA needed, or an event of it completed);
    otherwise the event to complete first: the open one, or one opened now."""
    policy = sca_policy.load(principal.sca_policy)
    if policy is None or not sca_policy.required(policy, amount, currency):
        return None
    async with db.read() as conn:
        found = await repository.events_of(conn, principal.tenant_id, payout_id)
    if any(row.status == "COMPLETED" for row in found):
        return None
    for row in found:
        if row.status == "PENDING" and now < row.expires_at:
            return shown(row, now)
    async with db.write() as conn:
        if policy.mode == "EMBEDDED":
            enrolled = await repository.authenticator(conn, principal.tenant_id, customer_id)
            if enrolled is None or enrolled.status != "active":
                raise ScaNotEnrolled(
                    f"this payout needs SCA, and customer {customer_id} has no active TOTP"
                    " authenticator: enrol one at /v1/customers/{customer_id}/sca/totp"
                )
        row = await repository.insert_event(
            conn,
            {
                "id": new_id(),
                "tenant_id": principal.tenant_id,
                "customer_id": customer_id,
                "payout_id": payout_id,
                "target_status": "PENDING",
                "mode": policy.mode,
                "status": "PENDING",
                "failed_attempts": 0,
                "created_at": now,
                "expires_at": now + timedelta(seconds=policy.event_ttl_seconds),
            },
        )
        event = shown(row, now)
        await events.record(conn, principal.tenant_id, "payout.sca_required", event, now)
    return event


async def get_event(
    db: Database, principal: Principal, event_id: uuid.UUID, now: datetime
) -> ScaEventOut:
    async with db.read() as conn:
        row = await repository.event(conn, principal.tenant_id, event_id)
    if row is None or not principal.owns(row.customer_id):
        raise NotFound(f"SCA event {event_id} not found")
    return shown(row, now)


async def attempt(
    db: Database,
    principal: Principal,
    event_id: uuid.UUID,
    body: Attempt,
    box: SecretBox,
    now: datetime,
) -> ScaEventOut:
    """One attempt at the event: its outcome (a failed attempt counts, and is kept, before the
    refusal is answered)."""
    refusal: KassaError | None = None
    async with db.write() as conn:
        row = await repository.event(conn, principal.tenant_id, event_id, lock=True)
        if row is None or not principal.owns(row.customer_id):
            raise NotFound(f"SCA event {event_id} not found")
        _check_open(row, now)
        if row.mode == "EMBEDDED":
            passed = await _code_passes(conn, row, body, box, now)
        else:
            if principal.customer_id is not None:
                raise Forbidden("an OUTSOURCED SCA is reported by the merchant, with its API key")
            if body.result is None or body.code is not None:
                raise ScaWrongVerification("this OUTSOURCED event takes result: VERIFIED or FAILED")
            passed = body.result == "VERIFIED"
        if passed:
            row = await repository.update_event(conn, row.id, status="COMPLETED", completed_at=now)
            kind = "payout.sca_completed"
        else:
            failed = row.failed_attempts + 1
            final = failed >= MAX_FAILED_ATTEMPTS or row.mode == "OUTSOURCED"
            status = "FAILED" if final else "PENDING"
            row = await repository.update_event(conn, row.id, failed_attempts=failed, status=status)
            kind = "payout.sca_failed" if final else ""
            if row.mode == "EMBEDDED":
                left = MAX_FAILED_ATTEMPTS - failed
                refusal = (
                    ScaEventFailed(f"{failed} wrong codes: the SCA event has failed")
                    if final
                    else ScaCodeInvalid(
                        f"the code is wrong or was used already; {left} attempt(s) left",
                        attempts_left=left,
                    )
                )
        event = shown(row, now)
        if kind:
            await events.record(conn, principal.tenant_id, kind, event, now)
    if refusal is not None:
        raise refusal
    return event


def _check_open(row: Row[Any], now: datetime) -> None:
    if row.status == "COMPLETED":
        raise ScaEventCompleted()
    if row.status == "FAILED":
        raise ScaEventFailed()
    if now >= row.expires_at:
        raise ScaEventExpired()


async def _code_passes(
    conn: AsyncConnection, row: Row[Any], body: Attempt, box: SecretBox, now: datetime
) -> bool:
    if body.code is None or body.result is not None:
        raise ScaWrongVerification("this EMBEDDED event takes the customer's TOTP code as code")
    enrolled = await repository.authenticator(conn, row.tenant_id, row.customer_id)
    if enrolled is None or enrolled.status != "active":
        raise ScaNotEnrolled(f"customer {row.customer_id} has no active TOTP authenticator")
    step = totp.matching_step(box.open(enrolled.secret).decode(), body.code, now)
    return step is not None and await repository.accept_step(
        conn, enrolled.id, step, activate_at=None
    )


async def enrol_totp(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str, box: SecretBox, now: datetime
) -> TotpEnrolment:
    """A new TOTP authenticator, pending until a first valid code activates it; the secret is
    shown this once and stored sealed."""
    existing = await repository.authenticator(conn, tenant_id, customer_id)
    if existing is not None and existing.status == "active":
        raise ScaAlreadyEnrolled(
            f"customer {customer_id} has an active authenticator; the merchant removes it first"
        )
    secret = totp.new_secret()
    authenticator_id = new_id()
    await repository.put_pending_authenticator(
        conn,
        {
            "id": authenticator_id,
            "tenant_id": tenant_id,
            "customer_id": customer_id,
            "secret": box.seal(secret.encode()),
            "status": "pending",
            "created_at": now,
        },
    )
    return TotpEnrolment(
        id=authenticator_id,
        customer_id=customer_id,
        method="TOTP",
        status="pending",
        secret=secret,
        otpauth_uri=totp.uri(secret, customer_id, ISSUER),
        created_at=now,
    )


async def activate_totp(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    customer_id: str,
    code: str,
    box: SecretBox,
    now: datetime,
) -> TotpEnrolment:
    found = await repository.authenticator(conn, tenant_id, customer_id)
    if found is None:
        raise NotFound(f"customer {customer_id} has no TOTP authenticator to activate")
    if found.status == "active":
        raise ScaAlreadyEnrolled(f"customer {customer_id}'s authenticator is active already")
    step = totp.matching_step(box.open(found.secret).decode(), code, now)
    if step is None or not await repository.accept_step(conn, found.id, step, activate_at=now):
        raise ScaCodeInvalid("the code is wrong: check the authenticator app's time")
    return TotpEnrolment(
        id=found.id,
        customer_id=customer_id,
        method="TOTP",
        status="active",
        created_at=found.created_at,
        activated_at=now,
    )


async def totp_status(
    conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str
) -> TotpEnrolment:
    found = await repository.authenticator(conn, tenant_id, customer_id)
    if found is None:
        raise NotFound(f"customer {customer_id} has no TOTP authenticator")
    return TotpEnrolment(
        id=found.id,
        customer_id=customer_id,
        method="TOTP",
        status=found.status,
        created_at=found.created_at,
        activated_at=found.activated_at,
    )


async def remove_totp(conn: AsyncConnection, tenant_id: uuid.UUID, customer_id: str) -> None:
    await repository.remove_authenticator(conn, tenant_id, customer_id)
