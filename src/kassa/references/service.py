"""References: a merchant's own name for a movement of money, unique per tenant across
everything that moves money (journal transactions and payouts).

A reference is claimed when the thing that carries it is created: an immediate deposit or
withdrawal, or a payout's PREVIEW. :func:`claim` is that rule in Python; the hot path's batch
function (``sql/kassa_post_wallets.sql``) applies the same rule in the same way. On PostgreSQL
both take one transaction-scoped advisory lock per (tenant, reference) before they look, so of
two concurrent claims in two tables the second sees the first; SQLite serialises every writer.
The unique indexes on each table stay as the last word within that table.

A payout's capture is booked without a reference (it is identified by its hold and the payout
id in its metadata), so completing a payout can never fail on a reference.
"""

from __future__ import annotations

import uuid

from sqlalchemy import column, literal, select, table, text, union_all
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.ledger.errors import Holder, duplicate_reference
from kassa.ledger.tables import journal_transactions

# The payouts table by name: the rule spans the ledger and payouts, and payouts (which claim
# references here) are above this module, not below it.
payouts = table("payouts", column("id"), column("tenant_id"), column("reference"))


def lock_key(tenant_id: uuid.UUID, reference: str) -> str:
    """The advisory lock's name; the SQL function builds the same text."""
    return f"reference:{tenant_id}:{reference}"


async def holder(conn: AsyncConnection, tenant_id: uuid.UUID, reference: str) -> Holder | None:
    """The transaction or payout of the tenant that carries ``reference``, if one does."""
    used = union_all(
        select(literal("transaction"), journal_transactions.c.id).where(
            journal_transactions.c.tenant_id == tenant_id,
            journal_transactions.c.reference == reference,
        ),
        select(literal("payout"), payouts.c.id).where(
            payouts.c.tenant_id == tenant_id, payouts.c.reference == reference
        ),
    ).limit(1)
    found = (await conn.execute(used)).first()
    if found is None:
        return None
    kind, holder_id = found
    return str(kind), holder_id if isinstance(holder_id, uuid.UUID) else uuid.UUID(holder_id)


async def claim(conn: AsyncConnection, tenant_id: uuid.UUID, reference: str | None) -> None:
    """Refuse a reference used before by any transaction or payout of the tenant; on
    PostgreSQL hold it until this unit of work ends, so no concurrent claim can take it too."""
    if reference is None:
        return
    if conn.dialect.name == "postgresql":
        await conn.execute(
            text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
            {"key": lock_key(tenant_id, reference)},
        )
    taken_by = await holder(conn, tenant_id, reference)
    if taken_by is not None:
        raise duplicate_reference(reference, taken_by)
