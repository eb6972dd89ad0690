"""Every table of Kassa on one ``MetaData``, for migrations and for ``kassa verify``."""

from kassa.auth.tables import api_keys, tenants
from kassa.events.tables import events
from kassa.idempotency.tables import idempotency_keys
from kassa.kit.db import metadata
from kassa.ledger.tables import accounts, holds, journal_entries, journal_transactions
from kassa.wallets.tables import wallets
from kassa.webhooks.tables import webhook_attempts, webhook_deliveries, webhook_endpoints

__all__ = [
    "accounts",
    "api_keys",
    "events",
    "holds",
    "idempotency_keys",
    "journal_entries",
    "journal_transactions",
    "metadata",
    "tenants",
    "wallets",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
]
