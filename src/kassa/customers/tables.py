from sqlalchemy import Column, String, Table, UniqueConstraint, Uuid

from kassa.kit import dberrors
from kassa.kit.db import UtcDateTime, metadata
from kassa.kit.errors import KassaError


class CustomerEmailTaken(KassaError):
    code = "customer_email_taken"
    status = 422
    title = "A customer with this email exists"


# Customer records for the dialects that keep them (Soap): who a ``cus_…`` id is, and which of
# Kassa's customer ids (a wallet's ``customer_id``) it stands for.
customer_profiles = Table(
    "customer_profiles",
    metadata,
    Column("id", String(40), primary_key=True),  # cus_ and 32 hex digits
    Column("tenant_id", Uuid, nullable=False),
    Column("customer_id", String(255), nullable=False),  # Kassa's: internal_id, or the id
    Column("internal_id", String(255), nullable=True),
    Column("email", String(320), nullable=False),  # as given; unique per tenant, any case
    Column("email_key", String(320), nullable=False),
    Column("first_name", String(200), nullable=False),
    Column("last_name", String(200), nullable=False),
    Column("phone_number", String(40), nullable=True),
    Column("date_of_birth", String(10), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("tenant_id", "email_key"),
)

dberrors.register_unique(
    "uq_customer_profiles_tenant_id_email_key",
    lambda: CustomerEmailTaken("a customer with this email exists"),
)
