"""core ledger, wallets, tenants and keys

Revision ID: 0001
Revises:
Create Date: 2026-11-21 19:16:08.433941
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from kassa.kit.db import UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "journal_transactions",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance_before", sa.BigInteger(), nullable=True),
        sa.Column("balance_after", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("hold_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('deposit', 'gift', 'withdrawal', 'fee', 'reversal')",
            name=op.f("ck_journal_transactions_kind"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_journal_transactions_amount_positive")),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_journal_transactions")),
        sa.UniqueConstraint("id", name=op.f("uq_journal_transactions_id")),
        sa.UniqueConstraint(
            "tenant_id", "reference", name=op.f("uq_journal_transactions_tenant_id_reference")
        ),
    )
    op.create_index(
        op.f("ix_journal_transactions_wallet_id_seq"),
        "journal_transactions",
        ["wallet_id", "seq"],
        unique=False,
    )

    op.create_table(
        "tenants",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("default_currency", sa.String(length=3), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenants")),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_api_keys_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
        sa.UniqueConstraint("prefix", name=op.f("uq_api_keys_prefix")),
    )
    op.create_index(op.f("ix_api_keys_tenant_id"), "api_keys", ["tenant_id"], unique=False)

    op.create_table(
        "journal_entries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "transaction_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("amount <> 0", name=op.f("ck_journal_entries_amount_nonzero")),
        sa.ForeignKeyConstraint(
            ["transaction_seq"],
            ["journal_transactions.seq"],
            name=op.f("fk_journal_entries_transaction_seq_journal_transactions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
    )
    op.create_index(
        op.f("ix_journal_entries_account_id"), "journal_entries", ["account_id"], unique=False
    )
    op.create_index(
        op.f("ix_journal_entries_transaction_seq"),
        "journal_entries",
        ["transaction_seq"],
        unique=False,
    )

    op.create_table(
        "wallets",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("alias", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("frozen_until", UtcDateTime(), nullable=True),
        sa.Column("freeze_reason", sa.String(length=500), nullable=True),
        sa.Column(
            "metadata", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False
        ),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "status IN ('active', 'frozen', 'closed')", name=op.f("ck_wallets_status")
        ),
        sa.CheckConstraint("length(alias) = 10", name=op.f("ck_wallets_alias_length")),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_wallets_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_wallets")),
        sa.UniqueConstraint("id", name=op.f("uq_wallets_id")),
        sa.UniqueConstraint("tenant_id", "alias", name=op.f("uq_wallets_tenant_id_alias")),
        sa.UniqueConstraint(
            "tenant_id",
            "customer_id",
            "currency",
            name=op.f("uq_wallets_tenant_id_customer_id_currency"),
        ),
    )
    op.create_index(op.f("ix_wallets_tenant_id_seq"), "wallets", ["tenant_id", "seq"], unique=False)

    op.create_table(
        "accounts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("wallet_id", sa.Uuid(), nullable=True),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=True),
        sa.Column("held", sa.BigInteger(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.CheckConstraint(
            "(wallet_id IS NOT NULL) = (kind IN ('cash', 'gift'))",
            name=op.f("ck_accounts_owner_matches_kind"),
        ),
        sa.CheckConstraint(
            "kind IN ('cash', 'gift', 'funding', 'payouts_clearing', 'fees')",
            name=op.f("ck_accounts_kind"),
        ),
        sa.CheckConstraint(
            "wallet_id IS NOT NULL OR (balance IS NULL AND held IS NULL)",
            name=op.f("ck_accounts_system_uncached"),
        ),
        sa.CheckConstraint(
            "wallet_id IS NULL OR (balance IS NOT NULL AND held IS NOT NULL AND balance >= 0 AND held >= 0 AND held <= balance)",
            name=op.f("ck_accounts_wallet_balance"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_accounts_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(
            ["wallet_id"], ["wallets.id"], name=op.f("fk_accounts_wallet_id_wallets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint("wallet_id", "kind", name=op.f("uq_accounts_wallet_id_kind")),
    )
    op.create_index(
        "uq_accounts_system",
        "accounts",
        ["tenant_id", "currency", "kind"],
        unique=True,
        postgresql_where=sa.text("wallet_id IS NULL"),
        sqlite_where=sa.text("wallet_id IS NULL"),
    )

    op.create_table(
        "holds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column(
            "account_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("wallet_id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reference", sa.String(length=255), nullable=True),
        sa.Column("expires_at", UtcDateTime(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("resolved_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('open', 'captured', 'released', 'expired')", name=op.f("ck_holds_status")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_holds_amount_positive")),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_holds_account_id_accounts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holds")),
    )
    op.create_index(
        "ix_holds_open",
        "holds",
        ["account_id"],
        unique=False,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )


def downgrade() -> None:
    op.drop_index("ix_holds_open", "holds")

    op.drop_table("holds")
    op.drop_index("uq_accounts_system", "accounts")

    op.drop_table("accounts")
    op.drop_index(op.f("ix_wallets_tenant_id_seq"), "wallets")

    op.drop_table("wallets")
    op.drop_index(op.f("ix_journal_entries_transaction_seq"), "journal_entries")
    op.drop_index(op.f("ix_journal_entries_account_id"), "journal_entries")

    op.drop_table("journal_entries")
    op.drop_index(op.f("ix_api_keys_tenant_id"), "api_keys")

    op.drop_table("api_keys")
    op.drop_table("tenants")
    op.drop_index(op.f("ix_journal_transactions_wallet_id_seq"), "journal_transactions")

    op.drop_table("journal_transactions")
