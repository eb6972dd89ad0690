"""Encrypting every stored secret again under the operator's newest key (``kassa reseal``).

``KASSA_SECRET_KEY`` lists keys newest first: the first encrypts, any of them decrypts. After a
new key is put first, ``kassa reseal`` re-encrypts (Fernet's rotate) what older keys sealed:
webhook signing secrets (current and previous), tenants' instrument fingerprint keys, customers'
TOTP secrets, and stored
``Idempotency-Key`` answers that show a secret. Once it reports nothing left under an old key,
that key can be removed from ``KASSA_SECRET_KEY``. Each table is one transaction; a value no
listed key opens is left as it is and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Table, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.tables import tenants
from kassa.idempotency.tables import idempotency_keys
from kassa.kit.db import Database
from kassa.kit.secretbox import SecretBox, SecretKeyError
from kassa.sca.tables import sca_authenticators
from kassa.webhooks.tables import webhook_endpoints


@dataclass
class Resealed:
    resealed: dict[str, int] = field(default_factory=dict)  # per table.column
    unopened: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not any(self.unopened.values())


# (table, the sealed column, the primary key columns, an extra condition or None)
_SEALED: list[tuple[Table, Column[Any], list[Column[Any]], Any]] = [
    (webhook_endpoints, webhook_endpoints.c.secret, [webhook_endpoints.c.id], None),
    (webhook_endpoints, webhook_endpoints.c.previous_secret, [webhook_endpoints.c.id], None),
    (tenants, tenants.c.fingerprint_key, [tenants.c.id], None),
    (sca_authenticators, sca_authenticators.c.secret, [sca_authenticators.c.id], None),
    (
        idempotency_keys,
        idempotency_keys.c.body,
        [idempotency_keys.c.tenant_id, idempotency_keys.c.key],
        idempotency_keys.c.sealed.is_(True),
    ),
]


async def reseal(db: Database, box: SecretBox) -> Resealed:
    done = Resealed()
    for table, column, keys, condition in _SEALED:
        name = f"{table.name}.{column.name}"
        async with db.write() as conn:
            resealed, unopened = await _reseal_column(conn, box, column, keys, condition)
        done.resealed[name], done.unopened[name] = resealed, unopened
    return done


async def _reseal_column(
    conn: AsyncConnection,
    box: SecretBox,
    column: Column[Any],
    keys: list[Column[Any]],
    condition: Any,
) -> tuple[int, int]:
    statement = select(*keys, column).where(column.is_not(None))
    if condition is not None:
        statement = statement.where(condition)
    resealed = unopened = 0
    for row in (await conn.execute(statement)).all():
        *key_values, sealed = row
        try:
            fresh = box.rotate(bytes(sealed))
        except SecretKeyError:
            unopened += 1
            continue
        match = [key == value for key, value in zip(keys, key_values, strict=True)]
        await conn.execute(update(column.table).where(*match).values({column.name: fresh}))
        resealed += 1
    return resealed, unopened
