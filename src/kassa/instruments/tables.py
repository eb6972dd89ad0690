"""Payment instruments. Only a masked form is stored: never a whole card number, IBAN or account
number; ``details`` holds what is not secret (bank codes, card expiry and brand)."""

from sqlalchemy import Column, Index, String, Table, Uuid

from kassa.kit.db import JsonObject, UtcDateTime, metadata

payment_instruments = Table(
    "payment_instruments",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("type", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # unverified | verified
    Column("holder_name", String(200), nullable=False),
    Column("display", String(64), nullable=False),  # e.g. "DE89 •••• 3000", "VISA •••• 1111"
    Column("last4", String(4), nullable=False),
    Column("details", JsonObject, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("verified_at", UtcDateTime, nullable=True),
    Column("deleted_at", UtcDateTime, nullable=True),
    # HMAC-SHA256 of the whole number under the tenant's fingerprint key (32 hex digits): the
    # same account or card gives the same fingerprint for every customer of one tenant.
    Column("fingerprint", String(32), nullable=True),
    Index(None, "tenant_id", "customer_id", "created_at"),
    Index(None, "tenant_id", "fingerprint"),
)
