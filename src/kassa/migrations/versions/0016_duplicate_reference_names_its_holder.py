"""A used reference's refusal names what holds it.

``kassa_post_wallets`` returns, beside ``duplicate_reference``, the transaction or payout that
already carries the reference (``o_existing_object``, ``o_existing_id``), so that the answer
can name it as ``kassa.references.service.claim`` does. The function as this migration made it
is ``kassa/migrations/sql/0016_kassa_post_wallets.sql``.

Revision ID: 0016
Revises: 0015
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Its result has two more columns: a new function, not a replaced one.
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute(sql_source("0016_kassa_post_wallets"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute(sql_source("0014_kassa_post_wallets"))
