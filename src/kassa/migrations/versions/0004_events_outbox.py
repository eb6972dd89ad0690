"""The events outbox, written by the hot path too.

``events`` holds every state change's event, written in the transaction of the change.
``kassa_post_wallets`` gains three arrays: each item's event id, type and data. The data comes
from the application as the transaction's JSON without what only the database knows yet (the
currency and the balances before and after), which the function adds before inserting the event
next to the journal rows, so a refused item writes no event.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from kassa.kit.db import UtcDateTime
from kassa.migrations import sql_source

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


OLD_SIGNATURE = (
    "kassa_post_wallets(uuid[], uuid[], text[], integer[], bigint[], text[], text[], uuid[], "
    "text[], text[], text[], text[], timestamptz[], boolean[])"
)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=64), nullable=False),
        sa.Column("data", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_events")),
        sa.UniqueConstraint("id", name=op.f("uq_events_id")),
    )
    op.create_index(op.f("ix_events_tenant_id_seq"), "events", ["tenant_id", "seq"])
    op.create_index(op.f("ix_events_tenant_id_type_seq"), "events", ["tenant_id", "type", "seq"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP FUNCTION {OLD_SIGNATURE}")
        op.execute(sql_source("0004_kassa_post_wallets"))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION kassa_post_wallets")
        op.execute(sql_source("0003_kassa_post_wallets"))
    op.drop_index(op.f("ix_events_tenant_id_type_seq"), table_name="events")
    op.drop_index(op.f("ix_events_tenant_id_seq"), table_name="events")
    op.drop_table("events")
