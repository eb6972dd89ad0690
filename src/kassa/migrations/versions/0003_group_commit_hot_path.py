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

import importlib
from collections.abc import Sequence

from alembic import op

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
POST_WALLETS = """
CREATE FUNCTION kassa_post_wallets(
  p_tenant uuid[], p_wallet uuid[], p_account_kind text[], p_sign integer[], p_amount bigint[],
  p_currency text[], p_counter_kind text[], p_transaction_id uuid[], p_transaction_kind text[],
  p_reference text[], p_description text[], p_metadata text[], p_now timestamptz[],
  p_refuse_frozen boolean[])
RETURNS TABLE (o_error text, o_currency text, o_balance_after bigint)
LANGUAGE plpgsql AS $$
DECLARE
  v_account bigint;
  v_balance bigint;
  v_status text;
  v_frozen_until timestamptz;
  v_currency text;
  v_counter bigint;
  v_seq bigint;
BEGIN
  FOR i IN 1 .. coalesce(array_length(p_wallet, 1), 0) LOOP
    o_error := NULL;
    o_currency := NULL;
    o_balance_after := NULL;
    v_account := NULL;
    IF p_reference[i] IS NOT NULL AND EXISTS (
        SELECT 1 FROM journal_transactions t
         WHERE t.tenant_id = p_tenant[i] AND t.reference = p_reference[i]) THEN
      o_error := 'duplicate_reference';
      RETURN NEXT;
      CONTINUE;
    END IF;
    IF p_sign[i] < 0 THEN
      UPDATE accounts a SET balance = a.balance - p_amount[i]
       WHERE a.wallet_id = p_wallet[i] AND a.kind = p_account_kind[i]
         AND a.tenant_id = p_tenant[i] AND a.balance - a.held >= p_amount[i]
      RETURNING a.id, a.balance INTO v_account, v_balance;
    ELSE
      UPDATE accounts a SET balance = a.balance + p_amount[i]
       WHERE a.wallet_id = p_wallet[i] AND a.kind = p_account_kind[i]
         AND a.tenant_id = p_tenant[i]
      RETURNING a.id, a.balance INTO v_account, v_balance;
    END IF;
    SELECT w.status, w.frozen_until, w.currency INTO v_status, v_frozen_until, v_currency
      FROM wallets w WHERE w.id = p_wallet[i] AND w.tenant_id = p_tenant[i];
    IF NOT FOUND THEN
      o_error := 'not_found';
    ELSIF v_status = 'closed' THEN
      o_error := 'wallet_closed';
    ELSIF p_refuse_frozen[i] AND v_status = 'frozen'
          AND (v_frozen_until IS NULL OR v_frozen_until > p_now[i]) THEN
      o_error := 'wallet_frozen';
    ELSIF p_currency[i] IS NOT NULL AND p_currency[i] <> v_currency THEN
      o_error := 'currency_mismatch';
    ELSIF v_account IS NULL THEN
      o_error := 'insufficient_funds';
    END IF;
    IF o_error IS NOT NULL THEN
      IF v_account IS NOT NULL THEN
        UPDATE accounts a SET balance = a.balance - p_sign[i] * p_amount[i]
         WHERE a.id = v_account;
      END IF;
      RETURN NEXT;
      CONTINUE;
    END IF;
    SELECT a.id INTO v_counter FROM accounts a
     WHERE a.tenant_id = p_tenant[i] AND a.currency = v_currency
       AND a.kind = p_counter_kind[i] AND a.wallet_id IS NULL;
    INSERT INTO journal_transactions AS t (
      id, tenant_id, wallet_id, kind, amount, currency, balance_before, balance_after,
      status, reference, description, metadata, created_at)
    VALUES (
      p_transaction_id[i], p_tenant[i], p_wallet[i], p_transaction_kind[i], p_amount[i],
      v_currency, v_balance - p_sign[i] * p_amount[i], v_balance, 'completed',
      p_reference[i], p_description[i], p_metadata[i]::jsonb, p_now[i])
    RETURNING t.seq INTO v_seq;
    INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)
    VALUES (v_seq, v_account, v_currency, p_sign[i] * p_amount[i]),
           (v_seq, v_counter, v_currency, -p_sign[i] * p_amount[i]);
    o_currency := v_currency;
    o_balance_after := v_balance;
    RETURN NEXT;
  END LOOP;
END $$
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallet")
    op.execute(CHECK_BALANCED_ONE_READ)
    op.execute(POST_WALLETS)


def _revision_0002_statement(starts_with: str) -> str:
    """A statement of migration 0002, to put back what this one replaced."""
    module = importlib.import_module("kassa.migrations.versions.0002_ledger_rules_in_the_database")
    statements: list[str] = module.PG_UPGRADE
    return next(s for s in statements if s.strip().startswith(starts_with))


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP FUNCTION kassa_post_wallets")
    op.execute("DROP FUNCTION kassa_check_balanced")
    op.execute(_revision_0002_statement("CREATE FUNCTION kassa_check_balanced("))
    op.execute(_revision_0002_statement("CREATE FUNCTION kassa_post_wallet("))
