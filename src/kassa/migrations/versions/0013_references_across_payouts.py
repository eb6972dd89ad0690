"""One reference per tenant across transactions and payouts, in the hot path's batch function.

``kassa_post_wallets`` now takes the reference's advisory lock and refuses a reference a payout
holds, as ``kassa.references.service.claim`` does. From here on the function's one source is
``kassa/migrations/sql/kassa_post_wallets.sql``; earlier migrations keep the text they had.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_source("0013_kassa_post_wallets"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute(sql_source("0006_kassa_post_wallets"))
