"""Ledger rules kept by the database itself, and the PostgreSQL hot-path function.

On both backends journal rows refuse UPDATE and DELETE. On PostgreSQL a deferred constraint
trigger refuses, at commit, any journal transaction whose entries do not sum to zero per currency
or that has fewer than two entries; and ``kassa_post_wallet`` performs a deposit or an immediate
withdrawal in one statement, so the wallet's row lock is held for as short a time as possible.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JOURNAL_TABLES = ("journal_transactions", "journal_entries")

PG_UPGRADE = [
    """
    CREATE FUNCTION kassa_journal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'journal rows are immutable: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'KSJ01';
    END $$
    """,
    *(
        f"""
        CREATE TRIGGER {table}_immutable BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION kassa_journal_immutable()
        """
        for table in JOURNAL_TABLES
    ),
    *(
        f"""
        CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
        FOR EACH STATEMENT EXECUTE FUNCTION kassa_journal_immutable()
        """
        for table in JOURNAL_TABLES
    ),
    """
    CREATE FUNCTION kassa_check_balanced(p_seq bigint) RETURNS void LANGUAGE plpgsql AS $$
    DECLARE
      v_currency text;
      v_sum numeric;
      v_count bigint;
    BEGIN
      SELECT e.currency, sum(e.amount) INTO v_currency, v_sum
        FROM journal_entries e WHERE e.transaction_seq = p_seq
        GROUP BY e.currency HAVING sum(e.amount) <> 0 LIMIT 1;
      IF FOUND THEN
        RAISE EXCEPTION 'journal transaction % is unbalanced: % entries sum to %',
          p_seq, v_currency, v_sum USING ERRCODE = 'KSJ02';
      END IF;
      SELECT count(*) INTO v_count FROM journal_entries e WHERE e.transaction_seq = p_seq;
      IF v_count < 2 THEN
        RAISE EXCEPTION 'journal transaction % has % entries; at least two are needed',
          p_seq, v_count USING ERRCODE = 'KSJ02';
      END IF;
    END $$
    """,
    """
    CREATE FUNCTION kassa_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM kassa_check_balanced(NEW.transaction_seq);
      RETURN NULL;
    END $$
    """,
    """
    CREATE FUNCTION kassa_transaction_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      PERFORM kassa_check_balanced(NEW.seq);
      RETURN NULL;
    END $$
    """,
    """
    CREATE CONSTRAINT TRIGGER journal_entries_balanced AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kassa_entry_balanced()
    """,
    """
    CREATE CONSTRAINT TRIGGER journal_transactions_balanced AFTER INSERT ON journal_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION kassa_transaction_balanced()
    """,
    # The hot path: one deposit (p_sign = 1) or immediate withdrawal (p_sign = -1) in one
    # statement. The wallet account's row is locked by its UPDATE and the wallet's status is read
    # after that, so closing a wallet (which locks the same row first) and a concurrent
    # deposit are serialised. Errors are raised with ERRCODE KS4xx and the error code as the
    # message, so the whole statement, and everything it wrote, is rolled back.
    """
    CREATE FUNCTION kassa_post_wallet(
      p_tenant uuid, p_wallet uuid, p_account_kind text, p_sign integer, p_amount bigint,
      p_currency text, p_counter_kind text, p_transaction_id uuid, p_transaction_kind text,
      p_reference text, p_description text, p_metadata jsonb, p_now timestamptz,
      p_refuse_frozen boolean,
      OUT o_currency text, OUT o_balance_after bigint, OUT o_seq bigint)
    LANGUAGE plpgsql AS $$
    DECLARE
      v_account bigint;
      v_status text;
      v_frozen_until timestamptz;
      v_counter bigint;
    BEGIN
      IF p_sign < 0 THEN
        UPDATE accounts a SET balance = a.balance - p_amount
         WHERE a.wallet_id = p_wallet AND a.kind = p_account_kind AND a.tenant_id = p_tenant
           AND a.balance - a.held >= p_amount
        RETURNING a.id, a.balance INTO v_account, o_balance_after;
      ELSE
        UPDATE accounts a SET balance = a.balance + p_amount
         WHERE a.wallet_id = p_wallet AND a.kind = p_account_kind AND a.tenant_id = p_tenant
        RETURNING a.id, a.balance INTO v_account, o_balance_after;
      END IF;
      SELECT w.status, w.frozen_until, w.currency INTO v_status, v_frozen_until, o_currency
        FROM wallets w WHERE w.id = p_wallet AND w.tenant_id = p_tenant;
      IF NOT FOUND THEN
        RAISE EXCEPTION 'not_found' USING ERRCODE = 'KS404';
      END IF;
      IF v_status = 'closed' THEN
        RAISE EXCEPTION 'wallet_closed' USING ERRCODE = 'KS409';
      END IF;
      IF p_refuse_frozen AND v_status = 'frozen'
         AND (v_frozen_until IS NULL OR v_frozen_until > p_now) THEN
        RAISE EXCEPTION 'wallet_frozen' USING ERRCODE = 'KS409';
      END IF;
      IF p_currency IS NOT NULL AND p_currency <> o_currency THEN
        RAISE EXCEPTION 'currency_mismatch' USING ERRCODE = 'KS422';
      END IF;
      IF v_account IS NULL THEN
        RAISE EXCEPTION 'insufficient_funds' USING ERRCODE = 'KS409';
      END IF;
      SELECT a.id INTO v_counter FROM accounts a
       WHERE a.tenant_id = p_tenant AND a.currency = o_currency AND a.kind = p_counter_kind
         AND a.wallet_id IS NULL;
      INSERT INTO journal_transactions AS t (
        id, tenant_id, wallet_id, kind, amount, currency, balance_before, balance_after,
        status, reference, description, metadata, created_at)
      VALUES (
        p_transaction_id, p_tenant, p_wallet, p_transaction_kind, p_amount, o_currency,
        o_balance_after - p_sign * p_amount, o_balance_after, 'completed', p_reference,
        p_description, p_metadata, p_now)
      RETURNING t.seq INTO o_seq;
      INSERT INTO journal_entries (transaction_seq, account_id, currency, amount)
      VALUES (o_seq, v_account, o_currency, p_sign * p_amount),
             (o_seq, v_counter, o_currency, -p_sign * p_amount);
    END $$
    """,
]

PG_DOWNGRADE = [
    "DROP FUNCTION kassa_post_wallet",
    "DROP TRIGGER journal_transactions_balanced ON journal_transactions",
    "DROP TRIGGER journal_entries_balanced ON journal_entries",
    "DROP FUNCTION kassa_transaction_balanced",
    "DROP FUNCTION kassa_entry_balanced",
    "DROP FUNCTION kassa_check_balanced",
    *(f"DROP TRIGGER {table}_no_truncate ON {table}" for table in JOURNAL_TABLES),
    *(f"DROP TRIGGER {table}_immutable ON {table}" for table in JOURNAL_TABLES),
    "DROP FUNCTION kassa_journal_immutable",
]

SQLITE_UPGRADE = [
    f"""
    CREATE TRIGGER {table}_no_{op_name.lower()} BEFORE {op_name} ON {table}
    BEGIN SELECT RAISE(ABORT, 'journal rows are immutable: {op_name} on {table} refused'); END
    """
    for table in JOURNAL_TABLES
    for op_name in ("UPDATE", "DELETE")
]

SQLITE_DOWNGRADE = [
    f"DROP TRIGGER {table}_no_{op_name.lower()}"
    for table in JOURNAL_TABLES
    for op_name in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    statements = PG_UPGRADE if op.get_bind().dialect.name == "postgresql" else SQLITE_UPGRADE
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    statements = PG_DOWNGRADE if op.get_bind().dialect.name == "postgresql" else SQLITE_DOWNGRADE
    for statement in statements:
        op.execute(statement)
