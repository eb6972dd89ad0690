"""Expired previews: the payout worker cancels PREVIEW payouts past their expiration time, found
by this index.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_payouts_status_expires_at"), "payouts", ["status", "expires_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_payouts_status_expires_at"), table_name="payouts")
