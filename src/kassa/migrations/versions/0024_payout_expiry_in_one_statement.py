"""The payout worker's expiry through ``kassa_change_payout`` on PostgreSQL.

The function takes the worker's expiry of a payout it found past its deadline (``p_expiring``:
the status it found, PREVIEW or PENDING; only a payout still in it is CANCELLED with reason
EXPIRED, its hold expired) and the clearing of the worker's past failures at the payout
(``p_clear_failures``), so the worker's changes no longer restate the rules through SQLAlchemy.
The function as this migration made it is ``kassa/migrations/sql/0024_kassa_change_payout.sql``
(migration 0026 changed it; its one source is ``kassa_change_payout.sql``); migration 0015's
function is ``sql/0015_kassa_change_payout.sql``.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The parameters of each version of the function: a new parameter makes a new function, so the
# one it replaces is dropped by name and parameters.
_BEFORE = (
    "uuid, uuid, text, text, jsonb, timestamptz, boolean, text, text, uuid, uuid, interval,"
    " boolean, text"
)
_AFTER = f"{_BEFORE}, text, boolean"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION kassa_change_payout({_BEFORE})")
    op.execute(sql_source("0024_kassa_change_payout"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION kassa_change_payout({_AFTER})")
    op.execute(sql_source("0015_kassa_change_payout"))
