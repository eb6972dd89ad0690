"""Payouts, and each tenant's payment options."""

from sqlalchemy import (
    BigInteger,
    Column,
    Index,
    Integer,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    text,
)

from kassa.kit import dberrors
from kassa.kit.db import JsonObject, UtcDateTime, metadata
from kassa.ledger.errors import duplicate_reference

# Each tenant's payment options as one JSON document (PUT replaces it whole).
payment_options = Table(
    "payment_options",
    metadata,
    Column("tenant_id", Uuid, primary_key=True),
    Column("options", JsonObject, nullable=False),
    Column("pending_ttl_seconds", BigInteger, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

payouts = Table(
    "payouts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("wallet_id", Uuid, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("instrument_id", Uuid, nullable=False),
    Column("payment_option", String(32), nullable=False),
    Column("connector", String(32), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("fees", JsonObject, nullable=False),  # [{amount, currency, reason}]
    Column("fee_total", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),
    Column("status_reason", String(200), nullable=True),
    Column("reference", String(255), nullable=True),
    Column("description", String(1000), nullable=True),
    Column("metadata", JsonObject, nullable=False),
    Column("hold_id", Uuid, nullable=True),
    Column("transaction_id", Uuid, nullable=True),
    Column("connector_reference", String(255), nullable=True),
    # When the worker next asks the rail about a PROCESSING payout.
    Column("next_check_at", UtcDateTime, nullable=True),
    Column("expires_at", UtcDateTime, nullable=False),  # a PREVIEW cannot move on after it
    Column("pending_expires_at", UtcDateTime, nullable=True),  # a PENDING is cancelled after it
    Column("history", JsonObject, nullable=False),  # [{status, at, reason}]
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # The worker's failures at this payout (expiry, asking the rail, recording its answer): how
    # many in a row, the last one's kind, since when; it leaves the payout until worker_retry_at.
    Column("worker_failures", Integer, nullable=False, server_default=text("0")),
    Column("worker_error", String(200), nullable=True),
    Column("worker_failing_since", UtcDateTime, nullable=True),
    Column("worker_retry_at", UtcDateTime, nullable=True),
    UniqueConstraint("tenant_id", "reference"),
    Index(None, "tenant_id", "created_at"),
    Index(None, "tenant_id", "status", "created_at"),
    Index(None, "status", "next_check_at"),
    Index(None, "status", "pending_expires_at"),
    Index(None, "status", "expires_at"),
    Index(
        "ix_payouts_failing",
        "worker_failures",
        postgresql_where=text("worker_failures > 0"),
        sqlite_where=text("worker_failures > 0"),
    ),
)

# The sandbox rail's own record of what it was handed (an outside rail keeps this on its side).
sandbox_submissions = Table(
    "sandbox_submissions",
    metadata,
    Column("payout_id", Uuid, primary_key=True),
    Column("submitted_at", UtcDateTime, nullable=False),
)

# A reference is unique per tenant across transactions and payouts (kassa.references.service);
# a claim that lost a race meets this index.
dberrors.register_unique("uq_payouts_tenant_id_reference", duplicate_reference)
