"""A payout's creation and each status change write their own event and stored answer.

``kassa_create_payout`` and ``kassa_change_payout`` take the event's id and the stored answer's
expiry, render the payout with ``kassa_payout_json`` (the JSON of the native API's
``PayoutOut``), and write the event and, with an Idempotency-Key, the answer with the change,
so that a change through the API is one statement on a connection in autocommit: one round
trip where it was four (BEGIN, the function, the event and the answer, COMMIT). A move to
PROCESSING also keeps the receipt of a rail that gives it without a call (the manual rail's,
``p_receipts``), which was one more statement after the move. Their one
sources are ``kassa/migrations/sql/kassa_{create,change}_payout.sql`` and
``kassa_payout_json.sql``; the functions before are ``sql/0017_kassa_create_payout.sql`` and
``sql/0024_kassa_change_payout.sql``.

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The parameters of each version of the functions: a new parameter makes a new function, so
# the one it replaces is dropped by name and parameters.
_CREATE_BEFORE = (
    "uuid, uuid, uuid, bigint, text, text, uuid, text, text, jsonb, jsonb, timestamptz,"
    " timestamptz, text, text"
)
_CHANGE_BEFORE = (
    "uuid, uuid, text, text, jsonb, timestamptz, boolean, text, text, uuid, uuid, interval,"
    " boolean, text, text, boolean"
)
# Both take the event's id and the stored answer's expiry; a change, the rails' receipts ahead.
_CREATE_ADDED = ", uuid, timestamptz"
_CHANGE_ADDED = ", jsonb, uuid, timestamptz"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION kassa_create_payout({_CREATE_BEFORE})")
    op.execute(f"DROP FUNCTION kassa_change_payout({_CHANGE_BEFORE})")
    op.execute(sql_source("kassa_payout_json"))
    op.execute(sql_source("kassa_create_payout"))
    op.execute(sql_source("kassa_change_payout"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION kassa_create_payout({_CREATE_BEFORE}{_CREATE_ADDED})")
    op.execute(f"DROP FUNCTION kassa_change_payout({_CHANGE_BEFORE}{_CHANGE_ADDED})")
    op.execute("DROP FUNCTION kassa_payout_json(payouts)")
    op.execute(sql_source("0017_kassa_create_payout"))
    op.execute(sql_source("0024_kassa_change_payout"))
