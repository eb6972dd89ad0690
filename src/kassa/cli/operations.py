"""``kassa verify``, ``purge`` and ``stuck``: checking the ledger, removing old events, and
what the background workers keep failing at."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated

import typer

from kassa.cli.common import JsonFlag, app, database, read, run, tenant_id, when
from kassa.kit.clock import SystemClock, isoformat


@app.command()
def verify(
    tenant: Annotated[str | None, typer.Option(help="check one tenant only")] = None,
) -> None:
    """Recompute every account from its entries; exit 1 on any mismatch."""
    from kassa.ledger.verify import verify as verify_ledger

    checked = database()
    only = None if tenant is None else tenant_id(tenant)
    report = read(checked, lambda conn: verify_ledger(conn, only))
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
    from kassa.webhooks import retention

    checked = database()
    before = SystemClock().now() - timedelta(days=older_than_days)
    purged = run(checked, lambda db: retention.purge(db, before, dry_run=dry_run))
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

    found = run(database(), lambda db: workers.stuck(db, limit))
    payouts = [
        {
            "id": str(payout.id),
            "tenant_id": str(payout.tenant_id),
            "status": payout.status,
            "connector": payout.connector,
            "failures": payout.failures,
            "last_error": payout.last_error,
            "failing_since": when(payout.failing_since),
            "next_attempt_at": when(payout.next_attempt_at),
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
            "next_attempt_at": when(delivery.next_attempt_at),
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
