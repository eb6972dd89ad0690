"""A payout's creation and each status change in one statement on PostgreSQL.

``kassa_create_payout`` (a PREVIEW) and ``kassa_change_payout`` (PENDING with its hold,
PROCESSING, COMPLETED with its capture, FAILED and CANCELLED with its release) hold the rules of
``kassa.payouts.lifecycle`` for a change posted through the API, with the Idempotency-Key's lock
and stored answer. Their one sources are ``kassa/migrations/sql/kassa_create_payout.sql`` and
``kassa/migrations/sql/kassa_change_payout.sql``.

Revision ID: 0015
Revises: 0014
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_source("0015_kassa_create_payout"))
    op.execute(sql_source("0015_kassa_change_payout"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_change_payout")
    op.execute("DROP FUNCTION kassa_create_payout")
