"""A webhook endpoint's format: ``standard`` (Standard Webhooks, as before) or ``paysafe``
(Paysafe's transaction update, signed with ``Signature``).

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "webhook_endpoints",
        sa.Column("format", sa.String(16), nullable=False, server_default="standard"),
    )


def downgrade() -> None:
    with op.batch_alter_table("webhook_endpoints") as batch:
        batch.drop_column("format")
