from sqlalchemy import BigInteger, Column, Index, Integer, LargeBinary, String, Table, Uuid

from kassa.kit.db import UtcDateTime, metadata

sca_authenticators = Table(
    "sca_authenticators",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("method", String(16), nullable=False),  # TOTP
    # The TOTP secret, sealed with the operator's key (kassa.kit.secretbox), never in clear.
    Column("secret", LargeBinary, nullable=False),
    Column("status", String(16), nullable=False),  # pending | active
    # The last time step a code was accepted for: a code (or an older one) is never taken again.
    Column("last_step", BigInteger, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("activated_at", UtcDateTime, nullable=True),
    Index(None, "tenant_id", "customer_id", "method", unique=True),
)

sca_events = Table(
    "sca_events",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("payout_id", Uuid, nullable=False),
    Column("target_status", String(16), nullable=False),  # the move it authorises: PENDING
    Column("mode", String(16), nullable=False),  # EMBEDDED | OUTSOURCED
    Column("status", String(16), nullable=False),  # PENDING | COMPLETED | FAILED
    Column("failed_attempts", Integer, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Index(None, "tenant_id", "payout_id"),
)
