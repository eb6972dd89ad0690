"""Checkout sessions: made by the merchant's key, opened by the customer with the session's
secret. A session is ``open`` until the customer completes or cancels it, the merchant expires
it, or its ``expires_at`` passes (then it shows ``expired``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.checkouts import repository
from kassa.checkouts.schemas import CheckoutOut, IssuedCheckout, NewCheckout, PageSettings
from kassa.events import service as events
from kassa.kit.db import Database
from kassa.kit.errors import KassaError, NotFound, ValidationFailed
from kassa.kit.ids import new_id
from kassa.wallets import lookup

SECRET_PREFIX = "cs_"  # noqa: S105 - the prefix, not a secret


class CheckoutClosed(KassaError):
    code = "checkout_closed"
    status = 409
    title = "The checkout session is no longer open"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def csrf_token(secret: str) -> str:
    """The page form's CSRF token, bound to the session: only who holds its secret (the page
    it served) can make it; a form posted from another site cannot."""
    return hmac.new(secret.encode(), b"kassa-checkout-form", hashlib.sha256).hexdigest()


def shown(row: Row[Any], now: datetime) -> CheckoutOut:
    status = row.status
    if status == "open" and now >= row.expires_at:
        status = "expired"
    return CheckoutOut(
        id=row.id,
        customer_id=row.customer_id,
        wallet_id=row.wallet_id,
        currency=row.currency,
        max_amount=row.max_amount,
        fixed_amount=row.fixed_amount,
        return_url=row.return_url,
        experience=row.experience,
        locale=row.locale,
        status=status,
        payout_id=row.payout_id,
        amount=row.amount,
        created_at=row.created_at,
        expires_at=row.expires_at,
        completed_at=row.completed_at,
    )


def page_settings(tenant: Row[Any] | None) -> PageSettings:
    """The tenant's page settings as stored (NULL columns: their defaults)."""
    if tenant is None:
        return PageSettings()
    return PageSettings(
        frame_ancestors=list(tenant.checkout_frame_ancestors or []),
        added_instruments=tenant.checkout_added_instruments or "unverified",
    )


def check_return_url(url: str, http_hosts: frozenset[str]) -> None:
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in http_hosts)
    if not parts.hostname or not secure or parts.username or parts.password:
        message = "must be an absolute https URL without credentials"
        raise ValidationFailed(
            f"return_url {message}",
            errors=[{"field": "return_url", "code": "invalid_return_url", "message": message}],
        )


async def create(
    db: Database,
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    default_currency: str,
    body: NewCheckout,
    base_url: str,
    http_hosts: frozenset[str],
    now: datetime,
) -> IssuedCheckout:
    check_return_url(body.return_url, http_hosts)
    currency = body.currency or default_currency
    wallet = await lookup.find(db, tenant_id, customer_id=body.customer_id, currency=currency)
    if wallet is None:
        raise NotFound(f"customer {body.customer_id} has no {currency} wallet")
    checkout_id = new_id()
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    values = {
        "id": checkout_id,
        "tenant_id": tenant_id,
        "customer_id": body.customer_id,
        "wallet_id": wallet.id,
        "currency": currency,
        "max_amount": body.max_amount,
        "fixed_amount": body.fixed_amount,
        "return_url": body.return_url,
        "experience": body.experience,
        "locale": body.locale.replace("-", "_"),
        "status": "open",
        "secret_hash": secret_hash(secret),
        "created_at": now,
        "expires_at": now + timedelta(seconds=body.expires_in),
    }
    await repository.insert_checkout(conn, values)
    found = await repository.get_checkout(conn, tenant_id, checkout_id)
    assert found is not None
    await events.record(conn, tenant_id, "checkout.created", shown(found, now), now)
    url = f"{base_url}/checkout/{checkout_id}/{secret}"
    return IssuedCheckout(**shown(found, now).model_dump(), url=url, client_secret=secret)


async def get(
    conn: AsyncConnection, tenant_id: uuid.UUID, checkout_id: uuid.UUID, now: datetime
) -> CheckoutOut:
    found = await repository.get_checkout(conn, tenant_id, checkout_id)
    if found is None:
        raise NotFound(f"checkout {checkout_id} not found")
    return shown(found, now)


async def expire(
    conn: AsyncConnection, tenant_id: uuid.UUID, checkout_id: uuid.UUID, now: datetime
) -> CheckoutOut:
    found = await get(conn, tenant_id, checkout_id, now)
    if found.status != "open" or not await finish(conn, tenant_id, checkout_id, "expired", now):
        raise CheckoutClosed(f"checkout {checkout_id} is {found.status}")
    return await get(conn, tenant_id, checkout_id, now)


async def finish(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    checkout_id: uuid.UUID,
    status: str,
    now: datetime,
    payout_id: uuid.UUID | None = None,
    amount: int | None = None,
) -> bool:
    """Close an open session, with its event (``checkout.<status>``, carrying the payout id)
    in the same unit of work; False if it was not open."""
    if not await repository.finish(conn, checkout_id, status, now, payout_id, amount):
        return False
    found = await repository.get_checkout(conn, tenant_id, checkout_id)
    assert found is not None
    await events.record(conn, tenant_id, f"checkout.{status}", shown(found, now), now)
    return True


async def by_secret(conn: AsyncConnection, checkout_id: str, secret: str) -> Row[Any] | None:
    """The session a page link names, if its secret is right (compared in constant time);
    None for any other link, which then learns nothing about the session."""
    try:
        parsed = uuid.UUID(checkout_id)
    except ValueError:
        return None
    found = await repository.get_checkout(conn, None, parsed)
    presented = secret_hash(secret)
    expected = found.secret_hash if found is not None else secret_hash("")
    if not hmac.compare_digest(presented, expected) or found is None:
        return None
    return found
