"""The ``kassa`` command: serve, worker, migrate, tenants, keys, verify, purge, stuck,
secret-key, reseal.

Each command imports what it needs when it runs, so that ``kassa --help`` and the quick
commands start without loading the web framework, the database drivers or the dialects."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from kassa import compat
from kassa.auth.scopes import SCOPES
from kassa.config import Settings
from kassa.kit.clock import SystemClock, isoformat
from kassa.kit.dburl import DEFAULT_DATABASE_URL, Backend, DatabaseUrl
from kassa.kit.errors import KassaError

if TYPE_CHECKING:
    from kassa.auth import service as auth
    from kassa.events import retention
    from kassa.kit.db import Database
    from kassa.reseal import Resealed
    from kassa.webhooks.secrets import SecretBox
    from kassa.workers import Stuck

T = TypeVar("T")

app = typer.Typer(
    help="Kassa: a wallet ledger and withdrawal service. The database comes from "
    "KASSA_DATABASE_URL (default: sqlite:///./kassa.db).",
    no_args_is_help=True,
    add_completion=False,
)
tenants_app = typer.Typer(help="Create and list tenants (merchants).", no_args_is_help=True)
keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")

JsonFlag = Annotated[bool, typer.Option("--json", help="print the result as one JSON object")]


def _settings(*, creates: bool = False) -> Settings:
    """The settings; a command that does not create the database (``creates``) refuses to run
    where none is configured and no ``./kassa.db`` exists, instead of making an empty one."""
    settings = Settings.from_env()
    try:
        url = DatabaseUrl(settings.database_url)
        url.backend  # noqa: B018 - validates the URL
        compat.check_names(settings)  # validates KASSA_DIALECTS
    except ValueError as error:
        _fail(str(error))
    default = settings.database_url == DEFAULT_DATABASE_URL
    if not creates and default and not Path(DEFAULT_DATABASE_URL.split("///", 1)[1]).exists():
        _fail(
            f"no Kassa database here: {Path.cwd() / 'kassa.db'} does not exist. Run this in the"
            " folder where 'kassa serve' keeps kassa.db, or set KASSA_DATABASE_URL"
        )
    return settings


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"kassa: {message}", err=True)
    raise typer.Exit(code)


def _prepare(settings: Settings) -> None:
    """The SQLite default migrates itself; PostgreSQL must have been migrated on purpose."""
    from kassa import migrations

    url = DatabaseUrl(settings.database_url)
    if url.backend is Backend.SQLITE:
        migrations.upgrade(settings.database_url)


def _with_db(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    from kassa.kit.db import Database

    async def run() -> T:
        db = Database(settings.database_url, pool_size=1)
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(run())
    except KassaError as error:
        _fail(error.detail, 1)
        raise  # unreachable: _fail raises


def _print(obj: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(obj))
    else:
        for key, value in obj.items():
            typer.echo(f"{key}: {value}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[int, typer.Option(help="worker processes")] = 1,
    access_log: Annotated[bool, typer.Option(help="log every request")] = False,
) -> None:
    """Start the HTTP API. On the SQLite default it migrates itself first and also does the
    background work (webhooks, payouts; see KASSA_WORKER). Health at /healthz and /readyz,
    Prometheus metrics at /metrics (KASSA_METRICS_TOKEN to require a token)."""
    from kassa import serving

    settings = _settings(creates=True)
    _prepare(settings)
    if DatabaseUrl(settings.database_url).backend is Backend.POSTGRESQL:
        _check_migrated(settings)
    _secret_box(settings)  # a bad key stops the start, not the first webhook
    typer.echo(
        f"kassa: serving http://{host}:{port} on {DatabaseUrl(settings.database_url).redacted()}"
        f" with {workers} worker(s)",
        err=True,
    )
    try:
        serving.run(host=host, port=port, workers=workers, access_log=access_log)
    except OSError as error:
        _fail(f"cannot listen on {host}:{port}: {error.strerror or error}")


def _secret_box(settings: Settings) -> SecretBox:
    """The operator's key for secrets at rest; a bad KASSA_SECRET_KEY stops the command."""
    from kassa.webhooks.secrets import SecretBox, SecretKeyError

    try:
        return SecretBox.from_settings(settings)
    except (SecretKeyError, OSError) as error:
        _fail(str(error))
        raise  # unreachable: _fail raises


@app.command()
def worker(
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="deliveries or payouts taken at once")
    ] = 50,
    idle_seconds: Annotated[
        float, typer.Option(min=0.05, help="how long to rest when nothing is due")
    ] = 1.0,
) -> None:
    """Deliver webhooks and move payouts on (expiry, payout rails, recovery) until stopped;
    SIGINT or SIGTERM finish the work in flight first.

    Run as many as you like beside the API: they share the work and never do one thing twice.
    `kassa serve` does this work itself on the SQLite default (KASSA_WORKER)."""
    from kassa import workers
    from kassa.kit.db import Database

    settings = _settings()
    _prepare(settings)
    if DatabaseUrl(settings.database_url).backend is Backend.POSTGRESQL:
        _check_migrated(settings)
    box = _secret_box(settings)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        db = Database(settings.database_url, pool_size=2)
        try:
            typer.echo(f"kassa: worker {os.getpid()} delivering webhooks, moving payouts", err=True)
            await workers.run(
                db,
                box,
                SystemClock(),
                settings,
                workers.default_connectors(db, settings),
                stop,
                batch_size=batch_size,
                idle_seconds=idle_seconds,
            )
        finally:
            await db.close()

    asyncio.run(run())
    typer.echo("kassa: worker stopped", err=True)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new operator key for KASSA_SECRET_KEY (it encrypts stored secrets at rest; put a
    new key first, keep the old after it, run 'kassa reseal', then drop the old)."""
    from kassa.webhooks.secrets import new_operator_key

    typer.echo(new_operator_key())


@app.command()
def reseal(as_json: JsonFlag = False) -> None:
    """Encrypt every stored secret again under the first key of KASSA_SECRET_KEY, so that older
    keys can then be removed; exits 1 if a secret opens with none of the keys."""
    from kassa import reseal as resealing

    settings = _settings()
    _prepare(settings)
    box = _secret_box(settings)

    async def work(db: Database) -> Resealed:
        return await resealing.reseal(db, box)

    done = _with_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"resealed": done.resealed, "unopened": done.unopened}))
    else:
        for name, count in done.resealed.items():
            typer.echo(f"kassa reseal: {name}: {count} resealed, {done.unopened[name]} unopened")
    if not done.ok:
        typer.echo(
            "kassa reseal: some secrets open with none of the keys; they are unchanged", err=True
        )
        raise typer.Exit(1)


def _check_migrated(settings: Settings) -> None:
    from kassa import migrations

    async def current(db: Database) -> str | None:
        return await migrations.current_revision(db)

    found = _with_db(settings, current)
    head = migrations.head_revision(settings.database_url)
    if found != head:
        _fail(f"the database is at migration {found}, not {head}: run 'kassa migrate' first")


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    from kassa import migrations

    settings = _settings(creates=True)
    migrations.upgrade(settings.database_url)
    typer.echo(f"kassa: migrated {DatabaseUrl(settings.database_url).redacted()} to head", err=True)


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Argument(help="the merchant's name")],
    currency: Annotated[str, typer.Option(help="default ISO 4217 currency, e.g. SAR")],
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Asia/Riyadh")] = "UTC",
    as_json: JsonFlag = False,
) -> None:
    """Create a tenant."""
    from kassa.auth import service as auth

    settings = _settings()
    _prepare(settings)

    async def work(db: Database) -> auth.Tenant:
        async with db.write() as conn:
            return await auth.create_tenant(
                conn, name, currency.upper(), timezone, SystemClock().now()
            )

    tenant = _with_db(settings, work)
    _print(
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

    settings = _settings()
    _prepare(settings)

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.read() as conn:
            rows = await auth_repository.list_tenants(conn)
        return [
            {"id": str(row.id), "name": row.name, "default_currency": row.default_currency}
            for row in rows
        ]

    rows = _with_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"data": rows}))
    for row in [] if as_json else rows:
        typer.echo(f"{row['id']}  {row['default_currency']}  {row['name']}")


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="tenant id")],
    scopes: Annotated[
        str | None,
        typer.Option(help="comma-separated; default all: " + ",".join(sorted(SCOPES))),
    ] = None,
    name: Annotated[str | None, typer.Option(help="a label for the key")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Create an API key; the key is printed this once and never stored."""
    from kassa.auth import service as auth

    settings = _settings()
    _prepare(settings)
    try:
        tenant_id = uuid.UUID(tenant)
        scope_list = auth.parse_scopes(scopes)
    except ValueError:
        _fail(f"{tenant!r} is not a tenant id")
        return
    except KassaError as error:
        _fail(error.detail)
        return

    async def work(db: Database) -> auth.IssuedKey:
        async with db.write() as conn:
            return await auth.create_key(conn, tenant_id, scope_list, name, SystemClock().now())

    issued = _with_db(settings, work)
    _print(
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

    settings = _settings()
    _prepare(settings)
    try:
        tenant_id = uuid.UUID(tenant)
    except ValueError:
        _fail(f"{tenant!r} is not a tenant id")
        return

    async def work(db: Database) -> list[dict[str, Any]]:
        async with db.read() as conn:
            rows = await auth_repository.list_keys(conn, tenant_id)
        return [
            {
                "id": str(row.id),
                "prefix": row.prefix,
                "scopes": row.scopes.split(),
                "name": row.name,
                "revoked": row.revoked_at is not None,
            }
            for row in rows
        ]

    rows = _with_db(settings, work)
    if as_json:
        typer.echo(json.dumps({"data": rows}))
        return
    for row in rows:
        state = "revoked" if row["revoked"] else "active"
        typer.echo(f"{row['id']}  ksk_{row['prefix']}_…  {state}  {','.join(row['scopes'])}")


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="key id or prefix")]) -> None:
    """Revoke an API key (running servers stop accepting it within KASSA_AUTH_CACHE_SECONDS)."""
    from kassa.auth import service as auth

    settings = _settings()
    _prepare(settings)

    async def work(db: Database) -> None:
        async with db.write() as conn:
            await auth.revoke_key(conn, key, SystemClock().now())

    _with_db(settings, work)
    typer.echo(f"kassa: revoked {key}", err=True)


@app.command()
def verify(
    tenant: Annotated[str | None, typer.Option(help="check one tenant only")] = None,
) -> None:
    """Recompute every account from its entries; exit 1 on any mismatch."""
    from kassa.ledger.verify import verify as verify_ledger

    settings = _settings()
    _prepare(settings)
    tenant_id = None
    if tenant is not None:
        try:
            tenant_id = uuid.UUID(tenant)
        except ValueError:
            _fail(f"{tenant!r} is not a tenant id")

    async def work(db: Database) -> Any:
        async with db.read() as conn:
            return await verify_ledger(conn, tenant_id)

    report = _with_db(settings, work)
    for problem in report.problems:
        typer.echo(f"MISMATCH {problem}")
    summary = (
        f"{report.accounts} accounts, {report.transactions} transactions, {report.entries} entries"
    )
    if report.problems:
        typer.echo(f"kassa verify: FAILED: {len(report.problems)} problem(s) in {summary}")
        raise typer.Exit(1)
    typer.echo(f"kassa verify: OK: {summary} all agree")


@app.command()
def purge(
    older_than_days: Annotated[
        int, typer.Option(min=1, help="remove events created more than this many days ago")
    ],
    dry_run: Annotated[bool, typer.Option(help="only count what would go")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove old events with their webhook deliveries and attempts (never the journal); an
    event with a delivery still pending stays. Run it from cron, e.g. daily."""
    from kassa.events import retention

    settings = _settings()
    _prepare(settings)
    before = SystemClock().now() - timedelta(days=older_than_days)

    async def work(db: Database) -> retention.Purged:
        return await retention.purge(db, before, dry_run=dry_run)

    purged = _with_db(settings, work)
    done = {
        "before": isoformat(before),
        "dry_run": dry_run,
        "events": purged.events,
        "deliveries": purged.deliveries,
        "attempts": purged.attempts,
        "kept_pending": purged.kept,
    }
    if as_json:
        typer.echo(json.dumps(done))
        return
    verb = "would remove" if dry_run else "removed"
    typer.echo(
        f"kassa purge: {verb} {purged.events} events, {purged.deliveries} deliveries and "
        f"{purged.attempts} attempts created before {done['before']}; kept {purged.kept} "
        "with a delivery still pending"
    )


@app.command()
def stuck(
    limit: Annotated[int, typer.Option(min=1, help="list at most this many of each")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """List the payouts and webhook deliveries the background workers keep failing at (each
    backs off on its own; these need an operator): id, tenant, failures in a row, the last
    error's kind and the next try."""
    from kassa import workers

    settings = _settings()
    _prepare(settings)

    async def work(db: Database) -> Stuck:
        return await workers.stuck(db, limit)

    found = _with_db(settings, work)
    payouts = [
        {
            "id": str(payout.id),
            "tenant_id": str(payout.tenant_id),
            "status": payout.status,
            "connector": payout.connector,
            "failures": payout.failures,
            "last_error": payout.last_error,
            "failing_since": _when(payout.failing_since),
            "next_attempt_at": _when(payout.next_attempt_at),
        }
        for payout in found.payouts
    ]
    deliveries = [
        {
            "delivery": delivery.seq,
            "tenant_id": str(delivery.tenant_id),
            "event_id": None if delivery.event_id is None else str(delivery.event_id),
            "endpoint_id": str(delivery.endpoint_id),
            "attempts": delivery.attempts,
            "failures": delivery.failures,
            "last_error": delivery.last_error,
            "next_attempt_at": _when(delivery.next_attempt_at),
        }
        for delivery in found.deliveries
    ]
    if as_json:
        typer.echo(json.dumps({"payouts": payouts, "webhook_deliveries": deliveries}))
        return
    typer.echo(f"kassa stuck: {len(payouts)} payout(s), {len(deliveries)} webhook delivery(ies)")
    for payout in payouts:
        typer.echo(
            f"payout {payout['id']}  tenant {payout['tenant_id']}  {payout['status']}"
            f"  {payout['connector']}  {payout['failures']} failures since"
            f" {payout['failing_since']}  next try {payout['next_attempt_at']}"
            f"  {payout['last_error']}"
        )
    for delivery in deliveries:
        typer.echo(
            f"delivery {delivery['delivery']}  event {delivery['event_id']}"
            f"  endpoint {delivery['endpoint_id']}  tenant {delivery['tenant_id']}"
            f"  {delivery['failures']} failures  next try {delivery['next_attempt_at']}"
            f"  {delivery['last_error']}"
        )


def _when(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)


def main() -> None:
    app(prog_name="kassa")


if __name__ == "__main__":
    main()
    sys.exit(0)
