"""Customers as actors: tokens scoped to one customer, and Strong Customer Authentication
(a tenant's SCA policy, customers' TOTP authenticators, the SCA events payouts wait on).

Revision ID: 0018
Revises: 0017
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kassa.kit.db import JsonObject, UtcDateTime

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("sca_policy", JsonObject, nullable=True))
    op.create_table(
        "customer_tokens",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_customer_tokens_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["key_id"], ["api_keys.id"], name=op.f("fk_customer_tokens_key_id_api_keys")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_tokens")),
        sa.UniqueConstraint("prefix", name=op.f("uq_customer_tokens_prefix")),
    )
    op.create_index(
        "ix_customer_tokens_tenant_id_customer_id", "customer_tokens", ["tenant_id", "customer_id"]
    )
    op.create_table(
        "sca_authenticators",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("activated_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sca_authenticators")),
    )
    op.create_index(
        "ix_sca_authenticators_tenant_id_customer_id_method",
        "sca_authenticators",
        ["tenant_id", "customer_id", "method"],
        unique=True,
    )
    op.create_table(
        "sca_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(255), nullable=False),
        sa.Column("payout_id", sa.Uuid(), nullable=False),
        sa.Column("target_status", sa.String(16), nullable=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("failed_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("expires_at", UtcDateTime(), nullable=False),
        sa.Column("completed_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sca_events")),
    )
    op.create_index("ix_sca_events_tenant_id_payout_id", "sca_events", ["tenant_id", "payout_id"])


def downgrade() -> None:
    op.drop_table("sca_events")
    op.drop_table("sca_authenticators")
    op.drop_table("customer_tokens")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("sca_policy")
