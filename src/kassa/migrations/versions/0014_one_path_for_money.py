"""One path for money: every deposit, gift, withdrawal and gift forfeit through one function.

``kassa_post_wallets`` no longer stores the answer of an item sent with an Idempotency-Key: the
caller renders it (each route in its own shape, the same bytes with or without a key) and stores
it in the batch's transaction. The function refuses a key met twice in one batch, and returns
the wallet's balances after each item, for answers that show them. Its one source is
``kassa/migrations/sql/kassa_post_wallets.sql``.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute("DROP FUNCTION kassa_store_answer")
    op.execute(sql_source("0014_kassa_post_wallets"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute(sql_source("0006_kassa_store_answer"))
    op.execute(sql_source("0013_kassa_post_wallets"))
