"""Every table of Kassa on one ``MetaData``, for migrations and for ``kassa verify``."""

from kassa.auth.tables import api_keys, customer_tokens, tenants
from kassa.checkouts.tables import checkouts
from kassa.customers.tables import customer_profiles
from kassa.events.tables import events
from kassa.idempotency.tables import idempotency_keys
from kassa.instruments.tables import payment_instruments
from kassa.kit.db import metadata
from kassa.ledger.tables import accounts, holds, journal_entries, journal_transactions
from kassa.payouts.tables import payment_options, payouts
from kassa.sca.tables import sca_authenticators, sca_events
from kassa.wallets.tables import wallets
from kassa.webhooks.tables import webhook_attempts, webhook_deliveries, webhook_endpoints

__all__ = [
    "accounts",
    "api_keys",
    "checkouts",
    "customer_profiles",
    "customer_tokens",
    "events",
    "holds",
    "idempotency_keys",
    "journal_entries",
    "journal_transactions",
    "metadata",
    "payment_instruments",
    "payment_options",
    "payouts",
    "sca_authenticators",
    "sca_events",
    "tenants",
    "wallets",
    "webhook_attempts",
    "webhook_deliveries",
    "webhook_endpoints",
]
