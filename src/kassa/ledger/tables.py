"""The ledger's tables.

Journal rows reference accounts and tenants without foreign keys on purpose: a foreign key makes
every insert take a share lock on the referenced row, and system accounts and tenants are
referenced by every transaction, so those locks would become the hot row the design forbids.
``kassa verify`` checks those references instead.
"""

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
    Uuid,
    text,
)

from kassa.kit import dberrors
from kassa.kit.db import JsonObject, SeqKey, UtcDateTime, metadata
from kassa.ledger.errors import duplicate_reference

WALLET_ACCOUNT_KINDS = ("cash", "gift")
SYSTEM_ACCOUNT_KINDS = ("funding", "payouts_clearing", "fees")

accounts = Table(
    "accounts",
    metadata,
    Column("id", SeqKey, primary_key=True, autoincrement=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("wallet_id", Uuid, ForeignKey("wallets.id"), nullable=True),
    Column("kind", String(24), nullable=False),
    Column("currency", String(3), nullable=False),
    # Cached on wallet accounts only. System accounts are touched by every transaction, so
    # their balance is the sum of their entries, never a row updated per transaction.
    Column("balance", BigInteger, nullable=True),
    Column("held", BigInteger, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("wallet_id", "kind"),
    CheckConstraint("kind IN ('cash', 'gift', 'funding', 'payouts_clearing', 'fees')", name="kind"),
    CheckConstraint(
        "(wallet_id IS NOT NULL) = (kind IN ('cash', 'gift'))", name="owner_matches_kind"
    ),
    CheckConstraint(
        "wallet_id IS NULL OR (balance IS NOT NULL AND held IS NOT NULL"
        " AND balance >= 0 AND held >= 0 AND held <= balance)",
        name="wallet_balance",
    ),
    CheckConstraint(
        "wallet_id IS NOT NULL OR (balance IS NULL AND held IS NULL)", name="system_uncached"
    ),
    Index(
        "uq_accounts_system",
        "tenant_id",
        "currency",
        "kind",
        unique=True,
        postgresql_where=text("wallet_id IS NULL"),
        sqlite_where=text("wallet_id IS NULL"),
    ),
)

journal_transactions = Table(
    "journal_transactions",
    metadata,
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("id", Uuid, nullable=False, unique=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("wallet_id", Uuid, nullable=True),
    Column("kind", String(24), nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("balance_before", BigInteger, nullable=True),
    Column("balance_after", BigInteger, nullable=True),
    Column("status", String(16), nullable=False),
    Column("reference", String(255), nullable=True),
    Column("description", String(1000), nullable=True),
    Column("metadata", JsonObject, nullable=False),
    Column("hold_id", Uuid, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "reference"),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("kind IN ('deposit', 'gift', 'withdrawal', 'fee', 'reversal')", name="kind"),
    Index(None, "wallet_id", "seq"),
)

journal_entries = Table(
    "journal_entries",
    metadata,
    Column("id", SeqKey, primary_key=True, autoincrement=True),
    Column(
        "transaction_seq",
        SeqKey,
        ForeignKey("journal_transactions.seq"),
        nullable=False,
        index=True,
    ),
    Column("account_id", SeqKey, nullable=False, index=True),
    Column("currency", String(3), nullable=False),
    # Positive raises the account's balance, negative lowers it.
    Column("amount", BigInteger, nullable=False),
    CheckConstraint("amount <> 0", name="amount_nonzero"),
)

holds = Table(
    "holds",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("account_id", SeqKey, ForeignKey("accounts.id"), nullable=False),
    Column("wallet_id", Uuid, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reference", String(255), nullable=True),
    Column("expires_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    CheckConstraint("amount > 0", name="amount_positive"),
    CheckConstraint("status IN ('open', 'captured', 'released', 'expired')", name="status"),
    Index(
        "ix_holds_open",
        "account_id",
        sqlite_where=text("status = 'open'"),
        postgresql_where=text("status = 'open'"),
    ),
)

# A reference is unique per tenant across transactions and payouts (kassa.references.service);
# a claim that lost a race meets this index.
dberrors.register_unique("uq_journal_transactions_tenant_id_reference", duplicate_reference)
