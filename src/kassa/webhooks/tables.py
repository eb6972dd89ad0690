"""Webhook endpoints, one delivery per (event, endpoint), and every attempt at it.

Deliveries are made by the database itself when an event is written (a trigger on ``events``,
migration 0007), so a delivery exists exactly when its event committed, whichever path wrote it.
"""

from sqlalchemy import (
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    Uuid,
    text,
)

from kassa.kit.db import JsonObject, SeqKey, UtcDateTime, metadata

webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("url", Text, nullable=False),
    Column("description", String(500), nullable=True),
    # The event types to send: a JSON array of types, or ["*"] for all.
    Column("event_types", JsonObject, nullable=False),
    Column("enabled", Boolean, nullable=False),
    # How deliveries are written and signed: "standard" (Standard Webhooks) or "paysafe"
    # (Paysafe's transaction update, ``Signature: base64(HMAC-SHA256(secret, body))``).
    Column("format", String(16), nullable=False, server_default=text("'standard'")),
    Column("disabled_reason", String(200), nullable=True),
    # The signing secret, encrypted with the operator's key (kassa.kit.secretbox).
    Column("secret", LargeBinary, nullable=False),
    # After a roll, the old secret keeps signing (beside the new one) until it expires.
    Column("previous_secret", LargeBinary, nullable=True),
    Column("previous_secret_expires_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    # Deleted endpoints stay, so their deliveries keep their history; the API no longer sees them.
    Column("deleted_at", UtcDateTime, nullable=True),
    Index(None, "tenant_id", "created_at"),
)

DELIVERY_PENDING = "pending"
DELIVERY_SUCCEEDED = "succeeded"
DELIVERY_FAILED = "failed"
DELIVERY_CANCELED = "canceled"

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("event_seq", SeqKey, nullable=False),
    Column("endpoint_id", Uuid, nullable=False),
    # pending (due at next_attempt_at), succeeded, failed (given up) or canceled (the endpoint
    # was disabled or deleted first).
    Column("status", String(16), nullable=False),
    # Attempts claimed so far; a worker claims attempt n by raising it from n - 1.
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    # Attempts made before the current round (a redelivery starts a new round of retries).
    Column("round_start", Integer, nullable=False, server_default=text("0")),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    # Attempts in a row that failed inside Kassa (not at the receiver), and the last one's kind.
    Column("worker_failures", Integer, nullable=False, server_default=text("0")),
    Column("worker_error", String(200), nullable=True),
    UniqueConstraint("event_seq", "endpoint_id"),
    Index(
        "ix_webhook_deliveries_due",
        "next_attempt_at",
        postgresql_where=text("status = 'pending'"),
        sqlite_where=text("status = 'pending'"),
    ),
    Index(None, "tenant_id", "event_seq"),
    Index(
        "ix_webhook_deliveries_failing",
        "worker_failures",
        postgresql_where=text("worker_failures > 0"),
        sqlite_where=text("worker_failures > 0"),
    ),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("delivery_seq", SeqKey, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("worker", String(100), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    # The receiver's HTTP status, or none when there was no answer (see error).
    Column("status_code", Integer, nullable=True),
    Column("error", String(200), nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("response_excerpt", String(500), nullable=True),
    Column("succeeded", Boolean, nullable=False),
    # One row per claimed attempt: a second worker can never record the same attempt.
    UniqueConstraint("delivery_seq", "attempt"),
)
