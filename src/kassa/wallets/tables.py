from sqlalchemy import (
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    String,
    Table,
    UniqueConstraint,
    Uuid,
)

from kassa.kit import dberrors
from kassa.kit.db import JsonObject, SeqKey, UtcDateTime, metadata
from kassa.wallets.errors import WalletExists

wallets = Table(
    "wallets",
    metadata,
    # seq orders pages; id is the public id.
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("id", Uuid, nullable=False, unique=True),
    Column("tenant_id", Uuid, ForeignKey("tenants.id"), nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("name", String(255), nullable=True),
    Column("alias", String(10), nullable=False),
    Column("status", String(16), nullable=False),
    Column("frozen_until", UtcDateTime, nullable=True),
    Column("freeze_reason", String(500), nullable=True),
    Column("metadata", JsonObject, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "customer_id", "currency"),
    UniqueConstraint("tenant_id", "alias"),
    CheckConstraint("status IN ('active', 'frozen', 'closed')", name="status"),
    CheckConstraint("length(alias) = 10", name="alias_length"),
    Index(None, "tenant_id", "seq"),
)

dberrors.register_unique(
    "uq_wallets_tenant_id_customer_id_currency",
    lambda: WalletExists("the customer already has a wallet in this currency"),
)
