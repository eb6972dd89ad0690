"""The ``kassa`` command, run as a real process on a database of its own."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from kassa.app import create_app
from kassa.auth.scopes import ALL_SCOPES
from kassa.auth.tables import api_keys
from kassa.config import Settings
from kassa.kit.db import Database
from tests.helpers import kassa_env, run_cli

Json = dict[str, Any]


# -- small helpers -------------------------------------------------------------------------


async def cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, url, *args)


async def cli_json(url: str, *args: str) -> Json:
    """Run a command with --json: it must succeed and print exactly one JSON object."""
    result = await cli(url, *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    obj = json.loads(lines[0])
    assert isinstance(obj, dict)
    return obj


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    """A clean refusal: non-zero exit, a message on stderr, no traceback anywhere."""
    assert result.returncode != 0, result.stdout
    assert result.stderr.strip(), "no message on stderr"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for word in words:
        assert word in result.stderr, result.stderr


async def create_tenant(url: str, name: str = "Acme", currency: str = "SAR") -> str:
    tenant = await cli_json(url, "tenants", "create", name, "--currency", currency)
    return str(tenant["id"])


async def create_key(url: str, tenant_id: str, scopes: str | None = None) -> Json:
    args = ["keys", "create", "--tenant", tenant_id]
    if scopes is not None:
        args += ["--scopes", scopes]
    return await cli_json(url, *args)


async def list_keys(url: str, tenant_id: str) -> list[Json]:
    listed = await cli_json(url, "keys", "list", "--tenant", tenant_id)
    assert set(listed) == {"data"}
    data: list[Json] = listed["data"]
    return data


async def list_tenants(url: str) -> list[Json]:
    data: list[Json] = (await cli_json(url, "tenants", "list"))["data"]
    return data


async def stored_key_rows(url: str) -> list[dict[str, Any]]:
    database = Database(url)
    await database.open()
    try:
        async with database.read() as conn:
            rows = (await conn.execute(select(api_keys))).all()
    finally:
        await database.close()
    return [dict(row._mapping) for row in rows]


@pytest.fixture
async def in_process(fresh_database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in this process on the fresh database, checking keys on every request."""
    app = create_app(Settings(database_url=fresh_database_url, auth_cache_seconds=0, worker="off"))
    async with (
        app.lifespan(),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://kassa.test"
        ) as client,
    ):
        yield client


def bearer(key: Json) -> dict[str, str]:
    return {"Authorization": f"Bearer {key['key']}"}


# -- help --------------------------------------------------------------------------------------


async def test_help_lists_every_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'untouched.db'}"
    main, tenants, keys = await asyncio.gather(
        cli(url, "--help"), cli(url, "tenants", "--help"), cli(url, "keys", "--help")
    )
    assert main.returncode == 0, main.stderr
    commands = (
        "serve",
        "worker",
        "migrate",
        "tenants",
        "keys",
        "verify",
        "purge",
        "reseal",
        "stuck",
    )
    for command in commands:
        assert re.search(rf"\b{command}\b", main.stdout), command
    assert tenants.returncode == 0
    assert {"create", "list"} <= set(re.findall(r"\b(create|list)\b", tenants.stdout))
    assert keys.returncode == 0
    assert {"create", "list", "revoke"} <= set(re.findall(r"\b(create|list|revoke)\b", keys.stdout))
    assert not (tmp_path / "untouched.db").exists(), "--help must not create a database"


EVERY_COMMAND = [
    (),
    ("serve",),
    ("worker",),
    ("migrate",),
    ("secret-key",),
    ("reseal",),
    ("verify",),
    ("purge",),
    ("stuck",),
    ("tenants",),
    ("tenants", "create"),
    ("tenants", "list"),
    ("keys",),
    ("keys", "create"),
    ("keys", "list"),
    ("keys", "revoke"),
]


def help_of(url: str, command: tuple[str, ...], columns: int) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "kassa", *command, "--help"],
        env=kassa_env(url, COLUMNS=str(columns)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: " ".join(c) or "kassa")
def test_help_is_whole_sentences_and_flags(tmp_path: Path, command: tuple[str, ...]) -> None:
    """Every help page. On a terminal too wide to wrap anything, each paragraph and each
    option's or command's description is one line: a second line could only be a line break
    of the source cutting a sentence in two. At 80 columns nothing is cut off with an
    ellipsis, and a flag shows no value type beside it (as if it took one)."""
    url = f"sqlite:///{tmp_path / 'untouched.db'}"
    wide = help_of(url, command, 1000)
    paragraph: list[str] = []
    for line in [*wide.splitlines(), ""]:
        if line.startswith("│"):
            cells = line.strip("│ ")
            continuation = line[1:].startswith(" " * 8)  # nothing in the name columns
            if continuation:  # only Typer's own [default: …] or [required] may follow
                assert cells.startswith("["), f"a description goes on a second line:\n{line}"
        elif line.strip() and not line.startswith(("╭", "╰")):
            paragraph.append(line.strip())
        else:
            assert len(paragraph) <= 1, f"a paragraph is broken into lines: {paragraph}"
            paragraph = []
    narrow = help_of(url, command, 80)
    assert "…" not in narrow, narrow
    for flag, shown in re.findall(r"│\s*\*?\s*(--[a-z-]+)(?:\s+--no-[a-z-]+)?\s+(\S+)", narrow):
        if flag in ("--json", "--help", "--access-log", "--dry-run"):
            assert not shown.startswith("<"), (flag, narrow)
    assert not (tmp_path / "untouched.db").exists()


def test_keys_create_help_lists_every_scope(tmp_path: Path) -> None:
    page = help_of(f"sqlite:///{tmp_path / 'kassa.db'}", ("keys", "create"), 80)
    text = " ".join(re.sub(r"(\s*│\s*)+", " ", page).split())
    assert ", ".join(sorted(ALL_SCOPES)) in text, text
    assert re.search(r"--json print the result as one JSON object", text), text


# -- tenants -----------------------------------------------------------------------------------


async def test_tenants_create_prints_one_json_object(fresh_database_url: str) -> None:
    tenant = await cli_json(fresh_database_url, "tenants", "create", "Acme", "--currency", "SAR")
    assert set(tenant) == {"id", "name", "default_currency", "timezone", "created_at"}
    assert uuid.UUID(tenant["id"])
    assert tenant["name"] == "Acme"
    assert tenant["default_currency"] == "SAR"
    assert tenant["timezone"] == "UTC"
    assert tenant["created_at"].endswith("Z")

    listed = await list_tenants(fresh_database_url)
    assert listed == [{"id": tenant["id"], "name": "Acme", "default_currency": "SAR"}]


async def test_tenants_create_without_json_prints_fields(fresh_database_url: str) -> None:
    result = await cli(
        fresh_database_url,
        "tenants",
        "create",
        "Souk",
        "--currency",
        "sar",
        "--timezone",
        "Asia/Riyadh",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "name: Souk" in lines
    assert "default_currency: SAR" in lines
    assert "timezone: Asia/Riyadh" in lines


async def test_tenants_create_refuses_bad_input_cleanly(fresh_database_url: str) -> None:
    create = ("tenants", "create")
    attempts: list[tuple[tuple[str, ...], str]] = [
        (("Acme", "--currency", "ZZZ"), "ZZZ"),
        (("Acme", "--currency", "EUR", "--timezone", "Mars/Base"), "Mars/Base"),
        (("   ", "--currency", "EUR"), "name"),
        (("Acme",), "--currency"),
    ]
    results = await asyncio.gather(
        *(cli(fresh_database_url, *create, *args) for args, _ in attempts)
    )
    for (_, word), result in zip(attempts, results, strict=True):
        assert_refused(result, word)
    assert await list_tenants(fresh_database_url) == []


# -- keys --------------------------------------------------------------------------------------


async def test_keys_create_prints_the_key_once_and_stores_only_its_hash(
    fresh_database_url: str,
) -> None:
    tenant_id = await create_tenant(fresh_database_url)
    issued = await create_key(fresh_database_url, tenant_id, "wallets:read,wallets:write")

    assert set(issued) >= {"id", "tenant_id", "prefix", "scopes", "key"}
    assert issued["tenant_id"] == tenant_id
    assert issued["scopes"] == ["wallets:read", "wallets:write"]
    key = issued["key"]
    assert key.startswith(f"ksk_{issued['prefix']}_")
    secret = key.removeprefix(f"ksk_{issued['prefix']}_")
    assert len(secret) >= 32

    rows = await stored_key_rows(fresh_database_url)
    assert len(rows) == 1
    row = rows[0]
    assert str(row["id"]) == issued["id"]
    for column, value in row.items():
        assert key not in str(value), column
        assert secret not in str(value), column
    assert row["key_hash"] != key
    assert re.fullmatch(r"[0-9a-f]{64}", row["key_hash"])


async def test_keys_create_refuses_bad_input_cleanly(fresh_database_url: str) -> None:
    url = fresh_database_url
    tenant_id = await create_tenant(url)
    create = ("keys", "create", "--tenant")
    attempts: list[tuple[tuple[str, ...], str]] = [
        ((tenant_id, "--scopes", "wallets:read,wallets:admin"), "wallets:admin"),
        ((tenant_id, "--scopes", " , "), "scope"),
        ((str(uuid.uuid4()),), "not found"),
        (("acme",), "acme"),
    ]
    results = await asyncio.gather(*(cli(url, *create, *args) for args, _ in attempts))
    for (_, word), result in zip(attempts, results, strict=True):
        assert_refused(result, word)
    assert await stored_key_rows(url) == []


async def test_keys_list_shows_prefixes_and_scopes_but_never_keys(
    fresh_database_url: str,
) -> None:
    url = fresh_database_url
    tenant_id, other_tenant = await asyncio.gather(create_tenant(url), create_tenant(url, "Other"))
    reader = await create_key(url, tenant_id, "wallets:read")
    admin, _ = await asyncio.gather(create_key(url, tenant_id), create_key(url, other_tenant))

    result = await cli(url, "keys", "list", "--tenant", tenant_id, "--json")
    assert reader["key"] not in result.stdout
    assert admin["key"] not in result.stdout

    listed = await list_keys(url, tenant_id)
    assert [item["id"] for item in listed] == [reader["id"], admin["id"]]
    assert listed[0] == {
        "id": reader["id"],
        "prefix": reader["prefix"],
        "scopes": ["wallets:read"],
        "name": None,
        "revoked": False,
    }
    # Without --scopes a key gets every scope.
    assert admin["scopes"] == sorted(ALL_SCOPES)  # no --scopes: every scope there is
    assert "customer-wallets.read_write" in admin["scopes"]
    assert listed[1]["scopes"] == admin["scopes"]
    assert listed[1]["revoked"] is False
    assert_refused(await cli(url, "keys", "list", "--tenant", "acme"), "acme")


async def test_revoked_key_is_refused(
    fresh_database_url: str, in_process: httpx.AsyncClient
) -> None:
    url = fresh_database_url
    tenant_id = await create_tenant(url, currency="EUR")
    doomed, spare = await asyncio.gather(create_key(url, tenant_id), create_key(url, tenant_id))

    created = await in_process.post(
        "/v1/wallets", json={"customer_id": "c1", "currency": "EUR"}, headers=bearer(doomed)
    )
    assert created.status_code == 201, created.text
    wallet_path = f"/v1/wallets/{created.json()['id']}"
    assert (await in_process.get(wallet_path, headers=bearer(doomed))).status_code == 200

    revoked = await cli(url, "keys", "revoke", doomed["id"])
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stderr

    refused = await in_process.get(wallet_path, headers=bearer(doomed))
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["code"] == "unauthorized"
    deposit = await in_process.post(
        f"{wallet_path}/deposits", json={"amount": 5}, headers=bearer(doomed)
    )
    assert deposit.status_code == 401
    assert (await in_process.get(wallet_path, headers=bearer(spare))).json()["balance"] == 0

    listed = {item["id"]: item["revoked"] for item in await list_keys(url, tenant_id)}
    assert listed == {doomed["id"]: True, spare["id"]: False}

    # By its visible prefix, too.
    by_prefix = await cli(url, "keys", "revoke", f"ksk_{spare['prefix']}")
    assert by_prefix.returncode == 0, by_prefix.stderr
    assert (await in_process.get(wallet_path, headers=bearer(spare))).status_code == 401


async def test_revoking_an_unknown_key_is_refused(fresh_database_url: str) -> None:
    by_id, by_prefix = await asyncio.gather(
        cli(fresh_database_url, "keys", "revoke", str(uuid.uuid4())),
        cli(fresh_database_url, "keys", "revoke", "ksk_nothing"),
    )
    assert_refused(by_id, "not found")
    assert_refused(by_prefix, "not found")


# -- migrate and verify ------------------------------------------------------------------------


async def test_migrate_twice_and_verify_an_empty_database(fresh_database_url: str) -> None:
    migrated = await cli(fresh_database_url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    verified, bad_tenant = await asyncio.gather(
        cli(fresh_database_url, "verify"), cli(fresh_database_url, "verify", "--tenant", "acme")
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "OK: 0 accounts, 0 transactions, 0 entries" in verified.stdout
    assert_refused(bad_tenant, "acme")


# -- stuck -------------------------------------------------------------------------------------


async def test_stuck_lists_nothing_on_a_database_where_nothing_fails(
    fresh_database_url: str,
) -> None:
    listed, text, bad_limit = await asyncio.gather(
        cli_json(fresh_database_url, "stuck"),
        cli(fresh_database_url, "stuck"),
        cli(fresh_database_url, "stuck", "--limit", "0"),
    )
    assert listed == {"payouts": [], "webhook_deliveries": []}
    assert text.returncode == 0, text.stderr
    assert text.stdout == "kassa stuck: 0 payout(s), 0 webhook delivery(ies)\n"
    assert bad_limit.returncode != 0
    assert "Traceback" not in bad_limit.stderr + bad_limit.stdout


def test_a_command_run_where_there_is_no_database_refuses_instead_of_making_one(
    tmp_path: Path,
) -> None:
    """Run in the wrong folder with no KASSA_DATABASE_URL, a command that only reads or adds to
    a database stops with a clear message and leaves no empty kassa.db behind (keys made in a
    stray one would answer 401 against the real server). ``migrate`` may create it."""
    env = dict(kassa_env("unused"))
    del env["KASSA_DATABASE_URL"]
    for args in (["tenants", "list"], ["keys", "list", "--tenant", str(uuid.uuid4())], ["verify"]):
        result = subprocess.run(
            [sys.executable, "-m", "kassa", *args],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert "no Kassa database here" in result.stderr
        assert "KASSA_DATABASE_URL" in result.stderr
        assert not (tmp_path / "kassa.db").exists()
    made = subprocess.run(
        [sys.executable, "-m", "kassa", "migrate"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "kassa.db").exists()
    listed = subprocess.run(
        [sys.executable, "-m", "kassa", "tenants", "list", "--json"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == {"data": []}
