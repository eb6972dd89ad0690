from sqlalchemy import Column, ForeignKey, LargeBinary, String, Table, Text, Uuid

from kassa.kit.db import UtcDateTime, metadata

tenants = Table(
    "tenants",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("default_currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    # The key of the tenant's instrument fingerprints (random, made on first use), encrypted
    # with the operator's key (kassa.kit.secretbox).
    Column("fingerprint_key", LargeBinary, nullable=True),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False, index=True),
    Column("name", String(200), nullable=True),
    # The visible part of the key (``ksk_<prefix>_…``), used to find the row; never secret.
    Column("prefix", String(16), nullable=False, unique=True),
    # SHA-256 of the whole key: keys are 256-bit random, so a slow hash would add nothing.
    Column("key_hash", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
)
