"""Webhook endpoints, deliveries and attempts; sealed idempotency answers.

A trigger on ``events`` makes one pending delivery per enabled endpoint that wants the event's
type, in the transaction that writes the event: the hot path's batch function, the slow path's
inserts and anything later all get their deliveries the same way, and a rolled-back change has
no event and so no delivery.

``idempotency_keys.sealed`` marks a stored answer encrypted with the operator's key (answers
that carry a webhook secret).

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from kassa.kit.db import UtcDateTime

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

INSERT_DELIVERIES = """
  INSERT INTO webhook_deliveries
    (tenant_id, event_seq, endpoint_id, status, attempts, next_attempt_at, created_at, updated_at)
  SELECT NEW.tenant_id, NEW.seq, e.id, 'pending', 0, NEW.created_at, NEW.created_at, NEW.created_at
  FROM webhook_endpoints e
  WHERE e.tenant_id = NEW.tenant_id AND e.enabled AND e.deleted_at IS NULL
    AND {wants_type};
"""

PG_TRIGGER = f"""
CREATE FUNCTION kassa_event_deliveries() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
{INSERT_DELIVERIES.format(wants_type="(e.event_types ? '*' OR e.event_types ? NEW.type)")}
  RETURN NULL;
END
$$
"""

PG_TRIGGER_ON_EVENTS = """
CREATE TRIGGER events_deliveries AFTER INSERT ON events
  FOR EACH ROW EXECUTE FUNCTION kassa_event_deliveries()
"""

SQLITE_TRIGGER = f"""
CREATE TRIGGER events_deliveries AFTER INSERT ON events FOR EACH ROW BEGIN
{
    INSERT_DELIVERIES.format(
        wants_type="EXISTS (SELECT 1 FROM json_each(e.event_types) WHERE value IN ('*', NEW.type))"
    )
}
END
"""


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=True),
        sa.Column("event_types", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("disabled_reason", sa.String(length=200), nullable=True),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("previous_secret", sa.LargeBinary(), nullable=True),
        sa.Column("previous_secret_expires_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(
        op.f("ix_webhook_endpoints_tenant_id_created_at"),
        "webhook_endpoints",
        ["tenant_id", "created_at"],
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("event_seq", SEQ, nullable=False),
        sa.Column("endpoint_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("round_start", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "event_seq", "endpoint_id", name=op.f("uq_webhook_deliveries_event_seq_endpoint_id")
        ),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_tenant_id_event_seq"),
        "webhook_deliveries",
        ["tenant_id", "event_seq"],
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("seq", SEQ, autoincrement=True, nullable=False),
        sa.Column("delivery_seq", SEQ, nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(length=100), nullable=False),
        sa.Column("started_at", UtcDateTime(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(length=200), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=False),
        sa.Column("response_excerpt", sa.String(length=500), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_webhook_attempts")),
        sa.UniqueConstraint(
            "delivery_seq", "attempt", name=op.f("uq_webhook_attempts_delivery_seq_attempt")
        ),
    )
    op.add_column(
        "idempotency_keys",
        sa.Column("sealed", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_TRIGGER)
        op.execute(PG_TRIGGER_ON_EVENTS)
    else:
        op.execute(SQLITE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER events_deliveries ON events")
        op.execute("DROP FUNCTION kassa_event_deliveries()")
    else:
        op.execute("DROP TRIGGER events_deliveries")
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("sealed")
    op.drop_table("webhook_attempts")
    op.drop_index(
        op.f("ix_webhook_deliveries_tenant_id_event_seq"), table_name="webhook_deliveries"
    )
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index(op.f("ix_webhook_endpoints_tenant_id_created_at"), table_name="webhook_endpoints")
    op.drop_table("webhook_endpoints")
