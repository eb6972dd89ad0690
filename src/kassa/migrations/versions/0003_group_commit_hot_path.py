"""Group commit for the PostgreSQL hot path, and a cheaper balance check at commit.

``kassa_post_wallets`` posts a batch of deposits and immediate withdrawals in one statement and
so one commit: each process gathers the requests that arrive while its connections are busy and
sends them together (see ``kassa.wallets.batcher``). Each item succeeds or fails on its own: a
refused item (insufficient funds, a frozen or closed wallet, another currency, an unknown wallet,
a reference already used) writes nothing and is reported by its error code; the others commit.
Anything the function does not expect raises, rolls back the whole batch, and the caller then
posts each item alone, so one bad item cannot fail its neighbours.

It replaces 0002's one-request ``kassa_post_wallet``. The balance check that runs at commit for
every journal row now reads the entries once.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

from alembic import op

from kassa.migrations import sql_source

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHECK_BALANCED_ONE_READ = """
CREATE OR REPLACE FUNCTION kassa_check_balanced(p_seq bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  v_currency text;
  v_sum numeric;
  v_rows bigint;
  v_count bigint := 0;
BEGIN
  FOR v_currency, v_sum, v_rows IN
    SELECT e.currency, sum(e.amount), count(*) FROM journal_entries e
     WHERE e.transaction_seq = p_seq GROUP BY e.currency
  LOOP
    IF v_sum <> 0 THEN
      RAISE EXCEPTION 'journal transaction % is unbalanced: % entries sum to %',
        p_seq, v_currency, v_sum USING ERRCODE = 'KSJ02';
    END IF;
    v_count := v_count + v_rows;
  END LOOP;
  IF v_count < 2 THEN
    RAISE EXCEPTION 'journal transaction % has % entries; at least two are needed',
      p_seq, v_count USING ERRCODE = 'KSJ02';
  END IF;
END $$
"""

# Item i of every array is one request. The wallet account's row is locked by its UPDATE and the
# wallet's status read after that, so a close (which locks the same row first) and a concurrent
# deposit are serialised. A refused item whose UPDATE already ran is undone by the opposite
# UPDATE in the same transaction, so it leaves nothing behind. Callers pass items ordered by
# wallet so that two batches lock wallets in the same order.
POST_WALLETS = sql_source("0003_kassa_post_wallets")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallet")
    op.execute(CHECK_BALANCED_ONE_READ)
    op.execute(POST_WALLETS)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute("DROP FUNCTION kassa_check_balanced")
    op.execute(sql_source("0002_kassa_check_balanced"))
    op.execute(sql_source("0002_kassa_post_wallet"))
