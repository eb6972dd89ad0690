"""Stored answers to requests sent with an ``Idempotency-Key``."""

from sqlalchemy import Boolean, Column, Index, Integer, LargeBinary, String, Table, Uuid, false

from kassa.idempotency.errors import IdempotencyKeyInUse
from kassa.kit import dberrors
from kassa.kit.db import UtcDateTime, metadata

idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("tenant_id", Uuid, primary_key=True),
    Column("key", String(255), primary_key=True),
    # SHA-256 of method, path and body: the same key must come with the same request.
    Column("fingerprint", String(64), nullable=False),
    Column("status_code", Integer, nullable=False),
    Column("media_type", String(64), nullable=False),
    Column("body", LargeBinary, nullable=False),
    # The body is encrypted with the operator's key (it holds a secret shown once).
    Column("sealed", Boolean, nullable=False, server_default=false()),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Index(None, "expires_at"),
)

# Two requests with one new key that both found no stored answer: the second is still in flight.
dberrors.register_unique(
    "pk_idempotency_keys",
    lambda: IdempotencyKeyInUse("a request with this Idempotency-Key is in flight; retry it"),
)
