"""Customer records kept for a dialect (Soap's ``POST /api/v1/customers``): a ``cus_…`` id
for a person, mapped to Kassa's customer id (the merchant's ``internal_id`` when given)."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.customers import repository
from kassa.customers.tables import CustomerEmailTaken

PREFIX = "cus_"


async def create(
    conn: AsyncConnection, tenant_id: uuid.UUID, fields: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """A new record; a second one with the same email (in any case) is refused (a race lost
    at the unique constraint is the same refusal)."""
    email_key = fields["email"].strip().lower()
    if await repository.email_taken(conn, tenant_id, email_key):
        raise CustomerEmailTaken("a customer with this email exists")
    profile_id = PREFIX + secrets.token_hex(16)
    values = {
        "id": profile_id,
        "tenant_id": tenant_id,
        "customer_id": fields.get("internal_id") or profile_id,
        "internal_id": fields.get("internal_id"),
        "email": fields["email"],
        "email_key": email_key,
        "first_name": fields["first_name"],
        "last_name": fields["last_name"],
        "phone_number": fields.get("phone_number"),
        "date_of_birth": fields.get("date_of_birth"),
        "created_at": now,
    }
    await repository.insert_profile(conn, values)
    return values


async def customer_id(conn: AsyncConnection, tenant_id: uuid.UUID, profile_id: str) -> str | None:
    """Kassa's customer id for a ``cus_…`` record of the tenant; None if it has none."""
    return await repository.customer_id_of(conn, tenant_id, profile_id)
