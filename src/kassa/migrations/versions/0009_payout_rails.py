"""Payout rails: when to ask a rail next about a PROCESSING payout, and the sandbox rail's own
record of the payouts handed to it.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kassa.kit.db import UtcDateTime

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("payouts", sa.Column("next_check_at", UtcDateTime(), nullable=True))
    op.create_index(op.f("ix_payouts_status_next_check_at"), "payouts", ["status", "next_check_at"])
    op.create_index(
        op.f("ix_payouts_status_pending_expires_at"), "payouts", ["status", "pending_expires_at"]
    )
    op.create_table(
        "sandbox_submissions",
        sa.Column("payout_id", sa.Uuid(), nullable=False),
        sa.Column("submitted_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("payout_id", name=op.f("pk_sandbox_submissions")),
    )


def downgrade() -> None:
    op.drop_table("sandbox_submissions")
    op.drop_index(op.f("ix_payouts_status_pending_expires_at"), table_name="payouts")
    op.drop_index(op.f("ix_payouts_status_next_check_at"), table_name="payouts")
    with op.batch_alter_table("payouts") as batch:
        batch.drop_column("next_check_at")
