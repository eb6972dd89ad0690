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

from kassa.migrations import sql_source

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
    sql_source("0002_kassa_check_balanced"),
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
    sql_source("0002_kassa_post_wallet"),
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
