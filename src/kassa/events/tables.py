"""The outbox: every state change writes its event here, in the transaction that makes it.

No foreign key to tenants, for the reason the journal has none: every event names its tenant,
and a foreign key would make each insert share-lock the tenant's row.
"""

from sqlalchemy import Column, Index, String, Table, Uuid

from kassa.kit.db import JsonObject, SeqKey, UtcDateTime, metadata

events = Table(
    "events",
    metadata,
    # seq orders pages and deliveries; id is the public id (and the webhook-id).
    Column("seq", SeqKey, primary_key=True, autoincrement=True),
    Column("id", Uuid, nullable=False, unique=True),
    Column("tenant_id", Uuid, nullable=False),
    Column("type", String(64), nullable=False),
    # The object as it was right after the change: a wallet, or a transaction for
    # wallet.credited and wallet.debited.
    Column("data", JsonObject, nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Index(None, "tenant_id", "seq"),
    Index(None, "tenant_id", "type", "seq"),
)
