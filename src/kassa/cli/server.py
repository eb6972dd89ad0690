"""``kassa serve``, ``worker``, ``migrate``, ``secret-key`` and ``reseal``: running Kassa and
looking after its database and its key."""

from __future__ import annotations

import json
import os
import signal
from typing import Annotated

import typer

from kassa.cli.common import JsonFlag, app, database, fail, run, secret_box, settings
from kassa.kit.clock import SystemClock
from kassa.kit.dburl import DatabaseUrl


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

    checked = database(creates=True, migrated=True)
    secret_box(checked)  # a bad key stops the start, not the first webhook

    def say_serving() -> None:  # only once the port is Kassa's
        typer.echo(
            f"kassa: serving http://{host}:{port} on"
            f" {DatabaseUrl(checked.database_url).redacted()} with {workers} worker(s)",
            err=True,
        )

    try:
        serving.run(
            host=host, port=port, workers=workers, access_log=access_log, on_bound=say_serving
        )
    except serving.CannotListen as error:
        fail(
            f"cannot listen on {error}; is another server using the port? Choose another with"
            " --port"
        )


@app.command()
def worker(
    batch_size: Annotated[
        int, typer.Option(min=1, max=1000, help="deliveries or payouts taken at once")
    ] = 50,
    idle_seconds: Annotated[
        float, typer.Option(min=0.05, help="how long to rest when nothing is due")
    ] = 1.0,
) -> None:
    """Deliver webhooks, move payouts on (expiry, payout rails, recovery) and close checkout
    sessions whose time ran out, until stopped; SIGINT or SIGTERM finish the work in flight first.

    Run as many as you like beside the API: they share the work and never do one thing twice.
    `kassa serve` does this work itself on the SQLite default (KASSA_WORKER)."""
    import asyncio

    from kassa import workers
    from kassa.kit.db import Database

    checked = database(migrated=True)
    box = secret_box(checked)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        db = Database(checked.database_url, pool_size=2)
        try:
            await db.open()  # the pool of the payout engine's SQL functions, on PostgreSQL
            typer.echo(f"kassa: worker {os.getpid()} delivering webhooks, moving payouts", err=True)
            await workers.run(
                db,
                box,
                SystemClock(),
                checked,
                workers.default_connectors(db, checked),
                stop,
                batch_size=batch_size,
                idle_seconds=idle_seconds,
            )
        finally:
            await db.close()

    asyncio.run(main())
    typer.echo("kassa: worker stopped", err=True)


@app.command("secret-key")
def secret_key() -> None:
    """Print a new operator key for KASSA_SECRET_KEY (it encrypts stored secrets at rest; put a
    new key first, keep the old after it, run 'kassa reseal', then drop the old)."""
    from kassa.kit.secretbox import new_operator_key

    typer.echo(new_operator_key())


@app.command()
def reseal(as_json: JsonFlag = False) -> None:
    """Encrypt every stored secret again under the first key of KASSA_SECRET_KEY, so that older
    keys can then be removed; exits 1 if a secret opens with none of the keys."""
    from kassa import reseal as resealing

    checked = database()
    box = secret_box(checked)
    done = run(checked, lambda db: resealing.reseal(db, box))
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


@app.command()
def migrate() -> None:
    """Apply database migrations up to the newest."""
    from kassa import migrations

    checked = settings(creates=True)
    migrations.upgrade(checked.database_url)
    typer.echo(f"kassa: migrated {DatabaseUrl(checked.database_url).redacted()} to head", err=True)
