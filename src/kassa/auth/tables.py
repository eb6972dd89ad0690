from sqlalchemy import Column, ForeignKey, Index, LargeBinary, String, Table, Text, Uuid

from kassa.kit.db import JsonObject, UtcDateTime, metadata

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
    # When a payout needs Strong Customer Authentication (kassa.sca.policy); NULL: never.
    # Loaded with the API key, so the check costs no read of its own.
    Column("sca_policy", JsonObject, nullable=True),
    # The origins that may frame the hosted withdrawal page (CSP frame-ancestors); NULL: none.
    Column("checkout_frame_ancestors", JsonObject, nullable=True),
    # unverified (None) | verified: how instruments added on the hosted page are marked
    Column("checkout_added_instruments", String(16), nullable=True),
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

customer_tokens = Table(
    "customer_tokens",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("customer_id", String(255), nullable=False),
    # ``kct_<prefix>_…`` as for API keys: the prefix finds the row, the SHA-256 checks it.
    Column("prefix", String(16), nullable=False, unique=True),
    Column("token_hash", String(64), nullable=False),
    Column("scopes", Text, nullable=False),
    # The API key that issued it: revoking that key ends its customers' tokens too.
    Column("key_id", Uuid, ForeignKey("api_keys.id"), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("revoked_at", UtcDateTime, nullable=True),
    Index(None, "tenant_id", "customer_id"),
)
