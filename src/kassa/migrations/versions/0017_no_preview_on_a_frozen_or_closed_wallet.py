"""A payout's PREVIEW is refused on a closed or frozen wallet, as its PENDING and an immediate
withdrawal are: a payout that could not go now is not previewed either.

``kassa_create_payout`` checks the wallet's status after finding it. The function as this
migration made it is ``kassa/migrations/sql/0017_kassa_create_payout.sql`` (migration 0026
changed it; its one source is ``kassa_create_payout.sql``).

Revision ID: 0017
Revises: 0016
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_source("0017_kassa_create_payout"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(sql_source("0015_kassa_create_payout"))
