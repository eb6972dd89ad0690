"""docs/dialects.md maps exactly the fields each dialect answers with."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx

from tests.compat.conftest import funded_wallet
from tests.helpers import TenantKey

DOC = Path(__file__).resolve().parents[2] / "docs" / "dialects.md"


def documented(section: str) -> set[str]:
    """The answer fields a dialect's mapping table names (requests and paths left out)."""
    text = DOC.read_text().split(f"\n## {section}\n", 1)[1].split("\n## ", 1)[0]
    fields: set[str] = set()
    for line in text.splitlines():
        cell = line.split("|")[1].strip() if line.startswith("| ") else ""
        if not cell.startswith("`"):  # not a row, a header, a request or path field
            continue
        names = re.findall(r"`([^`]+)`", cell)
        prefix = names[0].rsplit(".", 1)[0] + "." if "." in names[0] else ""
        fields.add(names[0])
        fields.update(prefix + name for name in names[1:])
    return fields


def leaves(document: dict[str, Any], prefix: str = "") -> set[str]:
    found: set[str] = set()
    for key, value in document.items():
        if isinstance(value, dict):
            found |= leaves(value, f"{prefix}{key}.")
        else:
            found.add(prefix + key)
    return found


async def test_the_mapping_tables_name_every_field_answered(
    plain: httpx.AsyncClient, native: httpx.AsyncClient, sar: TenantKey
) -> None:
    wallet = await funded_wallet(native, "55001", 10_000)
    bearer = {"Authorization": f"Bearer {sar.key}"}
    salla = await plain.post(
        "/compat/salla/admin/v2/customers/wallets/withdraw",
        json={"customer_id": 55001, "amount": 1},
        headers=bearer,
    )
    walletapi = await plain.post(
        "/compat/walletapi/api/v1/wallet/withdraw",
        json={"Id": wallet["id"], "Amount": 1},
        headers={"apikeypublic": sar.key, "apiclientpublic": str(sar.tenant_id)},
    )
    autional = await plain.post(
        "/compat/autional/wallets/55001/withdraw", json={"amount": "1.00"}, headers=bearer
    )
    for section, response in (("Salla", salla), ("WalletAPI", walletapi), ("Autional", autional)):
        assert response.status_code == 200, response.text
        assert leaves(response.json()) == documented(section), section
