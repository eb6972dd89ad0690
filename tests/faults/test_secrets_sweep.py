"""Secrets sweep: every secret the API showed this test is absent from the database and the logs.

On the shared ``server`` (both backends) the test makes API keys (one from the factory, one from
``kassa keys create`` that it then revokes), webhook endpoints (a signing secret shown at
creation, again by an idempotent replay, and by a roll), and payment instruments with full card
numbers and IBANs, spaced as a person types them; it uses every one of them (keys as
``Authorization`` and as WalletAPI's ``apikeypublic``, a revoked key and a key with a known
prefix but a wrong secret, cards and IBANs in creations with an ``Idempotency-Key``, a payout to
the card, and a card number Kassa refuses). Then it reads the database whole (PostgreSQL:
``pg_dump`` of the server's database; SQLite: the file's bytes with its ``-wal`` and ``-shm``),
and the server's log file, and looks for each secret in every encoding a careless store would
use: as shown, without spaces, URL-encoded, base64 (standard and URL-safe), hex, JSON-escaped
slashes, and for a ``whsec_`` secret its key part and the key's raw bytes (and their hex, as
``pg_dump`` writes ``bytea``). Of a card number, its middle digits (the 8 after the first 4,
which a BIN-and-last-4 display never shows; searched for the second card, as 4111 1111 1111 1111's
are spelled by its last four twice) must not appear either, nor an IBAN's account number.

As a check that it reads the right bytes, what Kassa is meant to keep in the clear must be
found: each key's visible prefix and each instrument's last four digits, and the server's
"serving" line in its log. The shared server logs at ``info`` without an access log, so the log
half of the sweep guards against a secret written by a log call at ``info`` or above (an error
that prints a request, a worker line), not against a debug or access log.

What a mutation would break: storing an API key unhashed (``auth.service.hash_key`` returning
the key), keeping an idempotent answer that shows a webhook secret unsealed (``sealed=False`` in
``webhooks.endpoints``), keeping an instrument's number whole, or logging a request's headers or
body. Tried (each on a copy of ``src`` run with ``PYTHONPATH``): ``hash_key`` returning the key
unchanged: caught on both backends (every key found as shown in the SQLite WAL and in
``pg_dump``); ``sealed=False`` for the webhook endpoints' idempotent answers: caught on SQLite
(the created and the rolled ``whsec_`` secrets found as shown, by key part and in base64url).

Customer tokens (``kct_…``, issued under an Idempotency-Key and replayed, used, one revoked and
used again, and a guess with a real prefix) and a customer's TOTP secret (shown at enrolment,
under an Idempotency-Key) are swept too: the token is kept only as its SHA-256, the TOTP secret
sealed, and so are the idempotent answers that show them. So is a checkout session's secret
(shown at creation, then in the page's URL, opened and posted to).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx

from kassa.kit.db import Database
from tests.helpers import KassaServer, create_wallet, deposit, make_tenant, run_cli

CARD = "4111 1111 1111 1111"  # as shown on the card, and sent so
CARD_2 = "4000056655665556"  # a second card, sent without spaces
REFUSED_CARD = "4000 0566 5566 5557"  # fails the Luhn check: refused, and still a secret
IBAN = "DE89 3704 0044 0532 0130 00"
UK_ACCOUNT = {"sort_code": "60-16-13", "account_number": "31926819"}

OPTIONS = {
    "options": [
        {
            "code": "BANK_TRANSFER",
            "instrument_types": ["SEPA_BANK_ACCOUNT", "UK_BANK_ACCOUNT"],
            "currencies": ["EUR"],
            "connector": "manual",
        },
        {
            "code": "CARD",
            "instrument_types": ["CARD"],
            "currencies": ["EUR"],
            "connector": "manual",
        },
    ]
}


def encodings(secret: str) -> dict[str, bytes]:
    """``secret`` as a careless store or log line might hold it."""
    forms = {
        "as shown": secret,
        "without spaces": secret.replace(" ", ""),
        "url-encoded": quote(secret, safe=""),
        "form-encoded": quote_plus(secret),
        "json-escaped": secret.replace("/", "\\/"),
    }
    found = {name: value.encode() for name, value in forms.items()}
    plain = secret.replace(" ", "").encode()
    found["base64"] = base64.b64encode(plain)
    found["base64url"] = base64.urlsafe_b64encode(plain).rstrip(b"=")
    found["hex"] = binascii.hexlify(plain)
    if secret.startswith("whsec_"):
        key_part = secret.removeprefix("whsec_")
        raw = base64.b64decode(key_part)
        found["key part"] = key_part.encode()
        found["key part url-encoded"] = quote(key_part, safe="").encode()
        found["key bytes"] = raw
        found["key bytes hex"] = binascii.hexlify(raw)
        found["key bytes base64url"] = base64.urlsafe_b64encode(raw).rstrip(b"=")
    digits = secret.replace(" ", "")
    if digits.isdigit() and len(digits) >= 13:
        # Unless what may be shown (BIN, last four) side by side spells them too, as in
        # 4111...1111, where "1111" twice in adjacent columns is "11111111".
        middle, first6, last4 = digits[4:12], digits[:6], digits[-4:]
        if not any(middle in shown for shown in (first6 + last4, last4 + last4, last4 + first6)):
            found["middle digits"] = middle.encode()
    return found


def findings(shown: dict[str, str], places: dict[str, bytes]) -> list[str]:
    found = []
    for label, secret in shown.items():
        needles: dict[bytes, str] = {}
        for encoding, needle in encodings(secret).items():
            needles.setdefault(needle, encoding)  # one line per distinct form
        for needle, encoding in needles.items():
            for place, haystack in places.items():
                if needle in haystack or needle.lower() in haystack.lower():
                    found.append(f"{label} ({encoding}: {needle[:24]!r}...) in {place}")
    return found


async def database_bytes(database_url: str) -> dict[str, bytes]:
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
        return {f"SQLite {file.name}": file.read_bytes() for file in files if file.exists()}
    dump = await asyncio.to_thread(
        subprocess.run,
        ["pg_dump", "--no-owner", database_url],
        capture_output=True,
        check=True,
        timeout=120,
    )
    return {"pg_dump": dump.stdout}


async def test_no_secret_the_api_showed_is_stored_or_logged(
    server: KassaServer, db: Database
) -> None:
    tenant = await make_tenant(db, "EUR")
    shown: dict[str, str] = {"the factory's API key": tenant.key}
    issued = []
    for name in ("cli-key", "revoked-key"):
        result = await asyncio.to_thread(
            run_cli,
            server.database_url,
            "keys",
            "create",
            "--tenant",
            str(tenant.tenant_id),
            "--name",
            name,
            "--json",
        )
        assert result.returncode == 0, result.stderr
        issued.append(json.loads(result.stdout))
        shown[f"{name} API key"] = issued[-1]["key"]
    cli_key, revoked = issued[0]["key"], issued[1]
    result = await asyncio.to_thread(
        run_cli, server.database_url, "keys", "revoke", revoked["prefix"]
    )
    assert result.returncode == 0, result.stderr
    # A key with a real prefix and a wrong secret: a guess, which must not be logged either.
    guessed = f"ksk_{issued[0]['prefix']}_{uuid.uuid4().hex}{uuid.uuid4().hex}"
    shown["a guessed API key"] = guessed

    async with httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {cli_key}"}, timeout=60
    ) as api:
        response = await api.put("/v1/payment-options", json=OPTIONS)
        assert response.status_code == 200, response.text
        customer = str(uuid.uuid4().int % 10**12 + 10**11)
        wallet = await create_wallet(api, "EUR", customer_id=customer)
        await deposit(api, wallet["id"], 100_000)

        for key in (revoked["key"], guessed):
            response = await api.get("/v1/wallets", headers={"Authorization": f"Bearer {key}"})
            assert response.status_code == 401, response.text
        response = await api.post(
            "/compat/walletapi/api/v1/wallet/withdraw",
            headers={"apikeypublic": tenant.key, "apiclientpublic": str(tenant.tenant_id)},
            json={"Id": wallet["id"], "Amount": 1, "ExternalReference": uuid.uuid4().hex},
        )
        assert response.status_code == 200, response.text
        response = await api.post(
            "/compat/salla/admin/v2/customers/wallets/deposit",
            headers={"Authorization": f"Bearer {tenant.key}"},
            json={"customer_id": int(customer), "amount": 1},
        )
        assert response.status_code == 200, response.text

        # Webhook secrets: at creation (idempotent, then replayed), without a key, by a roll.
        body = {"url": "https://93.184.215.14/secrets-sweep", "event_types": ["*"]}
        idempotent = {"Idempotency-Key": uuid.uuid4().hex}
        created = await api.post("/v1/webhook-endpoints", json=body, headers=idempotent)
        assert created.status_code == 201, created.text
        replayed = await api.post("/v1/webhook-endpoints", json=body, headers=idempotent)
        assert replayed.headers.get("idempotent-replayed") == "true", replayed.headers
        assert replayed.json()["secret"] == created.json()["secret"]
        shown["webhook secret at creation"] = created.json()["secret"]
        other = await api.post("/v1/webhook-endpoints", json=body)
        assert other.status_code == 201, other.text
        shown["webhook secret, second endpoint"] = other.json()["secret"]
        rolled = await api.post(
            f"/v1/webhook-endpoints/{created.json()['id']}/roll-secret",
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert rolled.status_code in (200, 201), rolled.text
        shown["webhook secret after a roll"] = rolled.json()["secret"]
        assert all(value.startswith("whsec_") for k, value in shown.items() if "webhook" in k)

        # Card numbers and bank accounts, spaced as shown and not, under Idempotency-Keys.
        instruments: dict[str, dict[str, Any]] = {
            "card number": {"type": "CARD", "card_number": CARD},
            "second card number": {"type": "CARD", "card_number": CARD_2},
            "IBAN": {"type": "SEPA_BANK_ACCOUNT", "iban": IBAN},
            "UK account number": {"type": "UK_BANK_ACCOUNT", **UK_ACCOUNT},
        }
        last4 = []
        card_instrument = ""
        for label, fields in instruments.items():
            if fields["type"] == "CARD":
                fields |= {"expiry_month": 12, "expiry_year": 2039}
            response = await api.post(
                f"/v1/customers/{customer}/instruments",
                json={"holder_name": "Ada Lovelace", **fields},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            )
            assert response.status_code == 201, response.text
            instrument = response.json()
            last4.append(instrument["last4"])
            number = str(
                fields.get("card_number") or fields.get("iban") or fields["account_number"]
            )
            shown[label] = number
            assert number.replace(" ", "") not in response.text
            verified = await api.post(
                f"/v1/customers/{customer}/instruments/{instrument['id']}/verify"
            )
            assert verified.status_code == 200, verified.text
            if label == "card number":
                card_instrument = instrument["id"]
        shown["IBAN's account number"] = IBAN.replace(" ", "")[-10:]
        response = await api.post(
            f"/v1/customers/{customer}/instruments",
            json={
                "holder_name": "Ada Lovelace",
                "type": "CARD",
                "card_number": REFUSED_CARD,
                "expiry_month": 12,
                "expiry_year": 2039,
            },
        )
        assert response.status_code == 422, response.text
        shown["a refused card number"] = REFUSED_CARD
        response = await api.post(
            "/v1/payouts",
            json={
                "wallet_id": wallet["id"],
                "amount": 1_000,
                "payment_option": "CARD",
                "instrument_id": card_instrument,
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text

        # Customer tokens: issued (idempotent, then replayed), used, revoked; a guessed one.
        idempotent = {"Idempotency-Key": uuid.uuid4().hex}
        tokens = []
        for _ in range(2):
            response = await api.post(f"/v1/customers/{customer}/tokens", headers=idempotent)
            assert response.status_code == 201, response.text
            tokens.append(response.json())
        assert tokens[0]["token"] == tokens[1]["token"]
        shown["a customer token"] = tokens[0]["token"]
        response = await api.post(f"/v1/customers/{customer}/tokens")
        assert response.status_code == 201, response.text
        other_token = response.json()
        shown["a revoked customer token"] = other_token["token"]
        token_prefix = other_token["token"].split("_")[1]
        shown["a guessed customer token"] = f"kct_{token_prefix}_{uuid.uuid4().hex}"
        revoked_token = await api.delete(f"/v1/customers/{customer}/tokens/{other_token['id']}")
        assert revoked_token.status_code == 200, revoked_token.text
        for token in (tokens[0]["token"], other_token["token"], shown["a guessed customer token"]):
            response = await api.get(
                f"/v1/wallets/{wallet['id']}", headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code in (200, 401), response.text
        # A TOTP secret, enrolled by the customer's own token under an Idempotency-Key.
        response = await api.post(
            f"/v1/customers/{customer}/sca/totp",
            headers={
                "Authorization": f"Bearer {tokens[0]['token']}",
                "Idempotency-Key": uuid.uuid4().hex,
            },
        )
        assert response.status_code == 201, response.text
        shown["a TOTP secret"] = response.json()["secret"]
        shown["a TOTP otpauth URI"] = response.json()["otpauth_uri"]

        # A checkout session's secret: shown at creation (under an Idempotency-Key), used to
        # open the page and post its form.
        response = await api.post(
            "/v1/checkouts",
            json={
                "customer_id": customer,
                "type": "withdrawal",
                "return_url": "https://example.com/back",
            },
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
        assert response.status_code == 201, response.text
        shown["a checkout secret"] = response.json()["client_secret"]
        async with httpx.AsyncClient(timeout=60) as browser:
            page = await browser.get(response.json()["url"])
            assert page.status_code == 200, page.text
            posted = await browser.post(response.json()["url"], data={"action": "confirm"})
            assert posted.status_code == 400, posted.text  # no CSRF token: refused

    places = await database_bytes(server.database_url)
    places["the server's log"] = server.log_path.read_bytes()
    # The sweep reads the right bytes: what is meant to be kept in the clear is there.
    everything = b"".join(places.values())
    for prefix in (issued[0]["prefix"], revoked["prefix"], token_prefix):
        assert prefix.encode() in everything, f"key prefix {prefix} not found: wrong database?"
    assert all(digits.encode() in everything for digits in last4), last4
    assert b"kassa: serving" in places["the server's log"], "not the server's log"

    found = findings(shown, places)
    assert not found, "\n".join(found)
