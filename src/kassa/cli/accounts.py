"""``kassa tenants`` and ``kassa keys``: the merchants and their API keys."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from kassa.auth.scopes import SCOPES
from kassa.cli.common import (
    JsonFlag,
    database,
    fail,
    keys_app,
    read,
    show,
    tenant_id,
    tenants_app,
    write,
)
from kassa.kit.clock import SystemClock, isoformat
from kassa.kit.errors import KassaError


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="the merchant's name")],
    currency: Annotated[str, typer.Option(help="default ISO 4217 currency, e.g. SAR")],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Asia/Riyadh")] = "UTC",
    as_json: JsonFlag = False,
) -> None:
    """Create a tenant."""
    from kassa.auth import service as auth

    checked = database()
    tenant = write(
        checked,
        lambda conn: auth.create_tenant(
            conn, name, currency.upper(), timezone, SystemClock().now()
        ),
    )
    show(
        {
            "id": str(tenant.id),
            "name": tenant.name,
            "default_currency": tenant.default_currency,
            "timezone": tenant.timezone,
            "created_at": isoformat(tenant.created_at),
        },
        as_json,
    )


@tenants_app.command("list")
def tenants_list(as_json: JsonFlag = False) -> None:
    """List tenants."""
    from kassa.auth import repository as auth_repository

    rows = read(database(), auth_repository.list_tenants)
    listed = [
        {"id": str(row.id), "name": row.name, "default_currency": row.default_currency}
        for row in rows
    ]
    if as_json:
        typer.echo(json.dumps({"data": listed}))
        return
    for row in listed:
        typer.echo(f"{row['id']}  {row['default_currency']}  {row['name']}")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="tenant id")],
    scopes: Annotated[
        str | None,
        typer.Option(
            help="comma-separated, e.g. `wallets:read,wallets:write`; without it, every"
            " scope: " + ", ".join(sorted(SCOPES))
        ),
    ] = None,
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; the key is printed this once and never stored."""
    from kassa.auth import service as auth

    checked = database()
    owner = tenant_id(tenant)
    try:
        scope_list = auth.parse_scopes(scopes)
    except KassaError as error:
        fail(error.detail)
    issued = write(
        checked,
        lambda conn: auth.create_key(conn, owner, scope_list, name, SystemClock().now()),
    )
    show(
        {
            "id": str(issued.id),
            "tenant_id": str(issued.tenant_id),
            "prefix": issued.prefix,
            "scopes": issued.scopes,
            "name": issued.name,
            "created_at": isoformat(issued.created_at),
            "key": issued.key,
        },
        as_json,
    )
    if not as_json:
        typer.echo("kassa: store the key now; it cannot be shown again", err=True)


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str, typer.Option(help="tenant id")], as_json: JsonFlag = False
) -> None:
    """List a tenant's keys (prefixes and scopes only; keys themselves are never stored)."""
    from kassa.auth import repository as auth_repository

    checked = database()
    owner = tenant_id(tenant)
    rows = read(checked, lambda conn: auth_repository.list_keys(conn, owner))
    listed: list[dict[str, Any]] = [
        {
            "id": str(row.id),
            "prefix": row.prefix,
            "scopes": row.scopes.split(),
            "name": row.name,
            "revoked": row.revoked_at is not None,
        }
        for row in rows
    ]
    if as_json:
        typer.echo(json.dumps({"data": listed}))
        return
    for row in listed:
        state = "revoked" if row["revoked"] else "active"
        typer.echo(f"{row['id']}  ksk_{row['prefix']}_…  {state}  {','.join(row['scopes'])}")


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="key id or prefix")]) -> None:
    """Revoke an API key (running servers stop accepting it within KASSA_AUTH_CACHE_SECONDS)."""
    from kassa.auth import service as auth

    write(database(), lambda conn: auth.revoke_key(conn, key, SystemClock().now()))
    typer.echo(f"kassa: revoked {key}", err=True)
