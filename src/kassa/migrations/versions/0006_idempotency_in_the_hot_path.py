"""Idempotency keys inside the hot path's batch statement.

A deposit or withdrawal sent with an ``Idempotency-Key`` stays in the group commit: the batch
function takes each item's key, request fingerprint, expiry and its possible error answers, and
inside the same statement it takes the key's advisory lock (held: ``idempotency_key_in_use``),
replays a stored answer, refuses a key used for another request, or does the work and stores
its answer (the transaction's JSON, which it also returns so that the first answer and every
replay are the same bytes). ``kassa_store_answer`` writes one stored answer.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STORE_ANSWER = sql_source("0006_kassa_store_answer")

SIGNATURE_0004 = (
    "kassa_post_wallets(uuid[], uuid[], text[], integer[], bigint[], text[], text[], uuid[], "
    "text[], text[], text[], text[], timestamptz[], boolean[], uuid[], text[], text[])"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(STORE_ANSWER)
    op.execute(f"DROP FUNCTION {SIGNATURE_0004}")
    op.execute(sql_source("0006_kassa_post_wallets"))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute(sql_source("0004_kassa_post_wallets"))
    op.execute("DROP FUNCTION kassa_store_answer")
