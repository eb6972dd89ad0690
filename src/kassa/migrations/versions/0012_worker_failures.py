"""The background workers' failures at one payout or one webhook delivery: how many in a row,
what the last one was, and (payouts) since when and when to try again. A failing item backs off
instead of being retried every pass, and the failing ones are found by a partial index.

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from kassa.kit.db import UtcDateTime

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FAILING = "worker_failures > 0"


def upgrade() -> None:
    for table in ("payouts", "webhook_deliveries"):
        op.add_column(
            table,
            sa.Column("worker_failures", sa.Integer(), nullable=False, server_default="0"),
        )
        op.add_column(table, sa.Column("worker_error", sa.String(length=200), nullable=True))
    op.add_column("payouts", sa.Column("worker_failing_since", UtcDateTime(), nullable=True))
    op.add_column("payouts", sa.Column("worker_retry_at", UtcDateTime(), nullable=True))
    op.create_index(
        "ix_payouts_failing",
        "payouts",
        ["worker_failures"],
        postgresql_where=sa.text(FAILING),
        sqlite_where=sa.text(FAILING),
    )
    op.create_index(
        "ix_webhook_deliveries_failing",
        "webhook_deliveries",
        ["worker_failures"],
        postgresql_where=sa.text(FAILING),
        sqlite_where=sa.text(FAILING),
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_failing", table_name="webhook_deliveries")
    op.drop_index("ix_payouts_failing", table_name="payouts")
    with op.batch_alter_table("payouts") as batch:
        batch.drop_column("worker_retry_at")
        batch.drop_column("worker_failing_since")
        batch.drop_column("worker_error")
        batch.drop_column("worker_failures")
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("worker_error")
        batch.drop_column("worker_failures")
