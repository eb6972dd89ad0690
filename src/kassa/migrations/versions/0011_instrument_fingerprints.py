"""Instrument fingerprints: each tenant's fingerprint key (encrypted) and each instrument's
fingerprint. Instruments made before this have none.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("fingerprint_key", sa.LargeBinary(), nullable=True))
    op.add_column(
        "payment_instruments", sa.Column("fingerprint", sa.String(length=32), nullable=True)
    )
    op.create_index(
        op.f("ix_payment_instruments_tenant_id_fingerprint"),
        "payment_instruments",
        ["tenant_id", "fingerprint"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_payment_instruments_tenant_id_fingerprint"), table_name="payment_instruments"
    )
    with op.batch_alter_table("payment_instruments") as batch:
        batch.drop_column("fingerprint")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("fingerprint_key")
