"""Payment instruments (masked only), payment options, payouts.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from kassa.kit.db import UtcDateTime

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "payment_instruments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("holder_name", sa.String(length=200), nullable=False),
        sa.Column("display", sa.String(length=64), nullable=False),
        sa.Column("last4", sa.String(length=4), nullable=False),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("verified_at", UtcDateTime(), nullable=True),
        sa.Column("deleted_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_instruments")),
    )
    op.create_index(
        op.f("ix_payment_instruments_tenant_id_customer_id_created_at"),
        "payment_instruments",
        ["tenant_id", "customer_id", "created_at"],
    )
    op.create_table(
        "payment_options",
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("options", JSON, nullable=False),
        sa.Column("pending_ttl_seconds", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("tenant_id", name=op.f("pk_payment_options")),
    )
    op.create_table(
        "payouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("instrument_id", sa.Uuid(), nullable=False),
        sa.Column("payment_option", sa.String(length=32), nullable=False),
        sa.Column("connector", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("fees", JSON, nullable=False),
        sa.Column("fee_total", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("status_reason", sa.String(length=200), nullable=True),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("hold_id", sa.Uuid(), nullable=True),
        sa.Column("transaction_id", sa.Uuid(), nullable=True),
        sa.Column("connector_reference", sa.String(length=255), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("pending_expires_at", UtcDateTime(), nullable=True),
        sa.Column("history", JSON, nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payouts")),
        sa.UniqueConstraint("tenant_id", "reference", name=op.f("uq_payouts_tenant_id_reference")),
    )
    op.create_index(op.f("ix_payouts_tenant_id_created_at"), "payouts", ["tenant_id", "created_at"])
    op.create_index(
        op.f("ix_payouts_tenant_id_status_created_at"),
        "payouts",
        ["tenant_id", "status", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_payouts_tenant_id_status_created_at"), table_name="payouts")
    op.drop_index(op.f("ix_payouts_tenant_id_created_at"), table_name="payouts")
    op.drop_table("payouts")
    op.drop_table("payment_options")
    op.drop_index(
        op.f("ix_payment_instruments_tenant_id_customer_id_created_at"),
        table_name="payment_instruments",
    )
    op.drop_table("payment_instruments")
