"""Tenants and API keys.

A key looks like ``ksk_<prefix>_<secret>``: the prefix finds the row and may be shown anywhere;
the whole key is stored only as its SHA-256 (the secret is 256 random bits, so a slow
password hash would add nothing). A key is shown once, when it is created.

Authenticating every request against the database would cost a round trip on the hot path, so
a process keeps a key it has checked for ``auth_cache_seconds``: a revoked key stops working
within that time (default 5 s; 0 checks the database on every request).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth import repository
from kassa.auth.scopes import ALL_SCOPES, CUSTOMER_SCOPES, expand
from kassa.kit.clock import Clock, SystemClock
from kassa.kit.db import Database
from kassa.kit.errors import Forbidden, NotFound, ValidationFailed
from kassa.kit.money import currency_exponent

KEY_PREFIX = "ksk"
CUSTOMER_TOKEN_PREFIX = "kct"  # noqa: S105 - a public marker, like "ksk"


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    scopes: frozenset[str]
    # The tenant's settings that never change after it is created (dialects need them on
    # every request; loaded with the key, so they cost no read of their own).
    currency: str
    timezone: str
    # A customer token's customer: the principal acts for that one customer only, on the
    # routes that admit customers (``kassa.auth.deps``). None for an API key.
    customer_id: str | None = None
    # The tenant's SCA policy as stored (``kassa.sca.policy`` reads it); None: SCA is off.
    sca_policy: dict[str, Any] | None = None

    def owns(self, customer_id: str) -> bool:
        """Whether an object of ``customer_id`` is this principal's to see."""
        return self.customer_id is None or self.customer_id == customer_id


@dataclass(frozen=True)
class Tenant:
    id: uuid.UUID
    name: str
    default_currency: str
    timezone: str
    created_at: datetime

    @classmethod
    def from_row(cls, row: Row[Any]) -> Tenant:
        return cls(row.id, row.name, row.default_currency, row.timezone, row.created_at)


@dataclass(frozen=True)
class IssuedKey:
    id: uuid.UUID
    tenant_id: uuid.UUID
    prefix: str
    scopes: list[str]
    name: str | None
    created_at: datetime
    key: str  # the only time the whole key exists outside its holder


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def parse_scopes(text: str | None) -> list[str]:
    if not text:
        return sorted(ALL_SCOPES)
    scopes = sorted({part.strip() for part in text.split(",") if part.strip()})
    unknown = [scope for scope in scopes if scope not in ALL_SCOPES]
    if unknown or not scopes:
        raise ValidationFailed(
            f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(sorted(ALL_SCOPES))}",
            errors=[{"field": "scopes", "code": "unknown_scope", "message": ", ".join(unknown)}],
        )
    return scopes


async def create_tenant(
    conn: AsyncConnection, name: str, currency: str, timezone: str, now: datetime
) -> Tenant:
    currency_exponent(currency)
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"unknown time zone {timezone!r}",
            errors=[{"field": "timezone", "code": "invalid_timezone", "message": timezone}],
        ) from None
    if not name.strip():
        raise ValidationFailed(
            "a tenant needs a name",
            errors=[{"field": "name", "code": "missing", "message": "must not be empty"}],
        )
    tenant = Tenant(uuid.uuid4(), name.strip(), currency, timezone, now)
    await repository.insert_tenant(conn, tenant.__dict__)
    return tenant


async def get_tenant(conn: AsyncConnection, tenant_id: uuid.UUID) -> Tenant:
    row = await repository.get_tenant(conn, tenant_id)
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return Tenant.from_row(row)


async def create_key(
    conn: AsyncConnection,
    tenant_id: uuid.UUID,
    scopes: list[str],
    name: str | None,
    now: datetime,
) -> IssuedKey:
    if await repository.get_tenant(conn, tenant_id) is None:
        raise NotFound(f"tenant {tenant_id} not found")
    prefix = secrets.token_hex(6)
    key = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key_id = uuid.uuid4()
    await repository.insert_key(
        conn,
        {
            "id": key_id,
            "tenant_id": tenant_id,
            "name": name,
            "prefix": prefix,
            "key_hash": hash_key(key),
            "scopes": " ".join(scopes),
            "created_at": now,
        },
    )
    return IssuedKey(key_id, tenant_id, prefix, scopes, name, now, key)


async def revoke_key(conn: AsyncConnection, key_id_or_prefix: str, now: datetime) -> Row[Any]:
    row = None
    key_uuid: uuid.UUID | None
    try:
        key_uuid = uuid.UUID(key_id_or_prefix)
    except ValueError:
        found = await repository.key_by_prefix(conn, key_id_or_prefix.removeprefix("ksk_"))
        key_uuid = found.id if found is not None else None
    if key_uuid is not None:
        row = await repository.revoke_key(conn, key_uuid, now)
    if row is None:
        raise NotFound(f"API key {key_id_or_prefix} not found")
    return row


@dataclass(frozen=True)
class IssuedCustomerToken:
    id: uuid.UUID
    customer_id: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    token: str  # shown once, as an API key is


DEFAULT_TOKEN_LIFETIME = timedelta(minutes=15)


async def issue_customer_token(
    conn: AsyncConnection,
    issuer: Principal,
    customer_id: str,
    scopes: list[str] | None,
    lifetime: timedelta,
    now: datetime,
) -> IssuedCustomerToken:
    """A token that acts for one customer, with scopes no wider than its issuer's."""
    wanted = sorted(set(scopes) if scopes is not None else CUSTOMER_SCOPES & issuer.scopes)
    beyond = [scope for scope in wanted if scope not in CUSTOMER_SCOPES]
    if beyond or not wanted:
        raise ValidationFailed(
            "a customer token carries only " + ", ".join(sorted(CUSTOMER_SCOPES)),
            errors=[{"field": "scopes", "code": "invalid_scope", "message": ", ".join(beyond)}],
        )
    missing = [scope for scope in wanted if scope not in issuer.scopes]
    if missing:
        raise Forbidden(f"the API key itself lacks {', '.join(missing)}")
    prefix = secrets.token_hex(6)
    token = f"{CUSTOMER_TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    token_id = uuid.uuid4()
    expires_at = now + lifetime
    await repository.insert_customer_token(
        conn,
        {
            "id": token_id,
            "tenant_id": issuer.tenant_id,
            "customer_id": customer_id,
            "prefix": prefix,
            "token_hash": hash_key(token),
            "scopes": " ".join(wanted),
            "key_id": issuer.key_id,
            "created_at": now,
            "expires_at": expires_at,
        },
    )
    return IssuedCustomerToken(token_id, customer_id, wanted, now, expires_at, token)


@dataclass(frozen=True)
class _CachedKey:
    principal: Principal | None
    key_hash: str
    checked_at: float
    expires_at: datetime | None = None  # a customer token's end


class Authenticator:
    """Turns a bearer token (an API key or a customer token) into a ``Principal``, keeping
    recent answers for a few seconds."""

    def __init__(self, db: Database, cache_seconds: float, clock: Clock | None = None) -> None:
        self._db = db
        self._cache_seconds = cache_seconds
        self._clock = clock or SystemClock()
        self._cache: dict[str, _CachedKey] = {}

    async def authenticate(self, token: str) -> Principal | None:
        parts = token.split("_", 2)
        if len(parts) != 3 or parts[0] not in (KEY_PREFIX, CUSTOMER_TOKEN_PREFIX):
            return None
        cache_key = f"{parts[0]}_{parts[1]}"
        presented_hash = hash_key(token)
        cached = self._cache.get(cache_key)
        if cached is None or time.monotonic() - cached.checked_at >= self._cache_seconds:
            if parts[0] == KEY_PREFIX:
                cached = await self._load_key(parts[1])
            else:
                cached = await self._load_customer_token(parts[1])
            if cached is None:
                self._cache.pop(cache_key, None)
                return None
            if self._cache_seconds > 0:
                self._cache[cache_key] = cached
        if not hmac.compare_digest(cached.key_hash, presented_hash):
            return None
        if cached.expires_at is not None and self._clock.now() >= cached.expires_at:
            return None
        return cached.principal

    def forget_all(self) -> None:
        """Drop every key this process keeps (a tenant setting loaded with keys changed)."""
        self._cache.clear()

    def forget(self, prefix: str) -> None:
        """Drop this process's copy of a token just revoked here (others expire theirs)."""
        self._cache.pop(prefix, None)

    async def _load_key(self, prefix: str) -> _CachedKey | None:
        async with self._db.read() as conn:
            row = await repository.key_by_prefix(conn, prefix)
        if row is None:
            return None
        principal = None
        if row.revoked_at is None:
            principal = Principal(
                row.tenant_id,
                row.id,
                expand(frozenset(row.scopes.split())),
                row.default_currency,
                row.timezone,
                sca_policy=row.sca_policy,
            )
        return _CachedKey(principal, row.key_hash, time.monotonic())

    async def _load_customer_token(self, prefix: str) -> _CachedKey | None:
        async with self._db.read() as conn:
            row = await repository.customer_token_by_prefix(conn, prefix)
        if row is None:
            return None
        principal = None
        if row.revoked_at is None and row.key_revoked_at is None:
            principal = Principal(
                row.tenant_id,
                row.id,
                frozenset(row.scopes.split()),
                row.default_currency,
                row.timezone,
                customer_id=row.customer_id,
                sca_policy=row.sca_policy,
            )
        return _CachedKey(principal, row.token_hash, time.monotonic(), row.expires_at)
