from sqlalchemy import BigInteger, Column, Index, String, Table, Text, Uuid

from kassa.kit.db import UtcDateTime, metadata

checkouts = Table(
    "checkouts",
    metadata,
    Column("id", Uuid, primary_key=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("customer_id", String(255), nullable=False),
    Column("wallet_id", Uuid, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("max_amount", BigInteger, nullable=True),  # the customer picks up to this
    Column("fixed_amount", BigInteger, nullable=True),  # ... or exactly this
    Column("return_url", Text, nullable=False),
    Column("experience", String(16), nullable=False),  # web | webview
    Column("locale", String(16), nullable=False),
    Column("status", String(16), nullable=False),  # open | completed | cancelled | expired
    # SHA-256 of the client secret (``cs_…``): the page's capability, never stored in clear.
    Column("secret_hash", String(64), nullable=False),
    Column("payout_id", Uuid, nullable=True),
    Column("amount", BigInteger, nullable=True),  # what the customer took out, once completed
    Column("created_at", UtcDateTime, nullable=False),
    Column("expires_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Index(None, "tenant_id", "created_at"),
)
