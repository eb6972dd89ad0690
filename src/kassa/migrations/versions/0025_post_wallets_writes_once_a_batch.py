"""``kassa_post_wallets`` writes a batch's journal transactions, entries and events in one
statement.

The loop over the batch checks and moves each item as before; the items that went through are
then written together (one INSERT of their transactions, their entries and their events), so
that a statement's fixed cost in PostgreSQL (its executor, its tables' CHECK constraints) is
paid once a batch rather than three times an item. Its one source is
``kassa/migrations/sql/kassa_post_wallets.sql``; migration 0016's function is
``sql/0016_kassa_post_wallets.sql``.

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_source("kassa_post_wallets"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_source("0016_kassa_post_wallets"))
