"""``kassa purge``: old events go with their deliveries and attempts, an event whose delivery is
still pending stays, recent events and the journal are untouched, and ``--dry-run`` only
counts."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from typing import Any

from tests.helpers import create_wallet, deposit, row_counts, run_cli
from tests.webhooks.conftest import Hooks
from tests.webhooks.receiver import Receiver, Reply
from tests.webhooks.test_delivery import deliveries_of, event_ids


async def purge(url: str, *args: str) -> dict[str, Any]:
    result = await asyncio.to_thread(run_cli, url, "purge", "--json", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


async def test_old_events_go_with_their_deliveries_and_pending_ones_stay(
    hooks: Hooks, receiver: Receiver, fresh_database_url: str
) -> None:
    """``hooks`` runs on ``fresh_database_url``, the database the command is pointed at."""
    await hooks.endpoint(receiver.url)
    hooks.clock.advance(-timedelta(days=100))
    wallet = await create_wallet(hooks.api)
    await deposit(hooks.api, wallet["id"], 100)
    assert await hooks.drain() == 2  # both delivered at once: one attempt each
    receiver.default = Reply(500)
    await deposit(hooks.api, wallet["id"], 50)
    assert await hooks.drain() == 1  # refused: the delivery stays pending, to be retried
    hooks.clock.advance(timedelta(days=100))
    await create_wallet(hooks.api, customer_id="recent")
    ids = await event_ids(hooks.api)
    assert len(ids) == 4
    ledger = await row_counts(hooks.db)

    counted = await purge(fresh_database_url, "--older-than-days", "30", "--dry-run")
    expected = {"events": 2, "deliveries": 2, "attempts": 2, "kept_pending": 1}
    assert {k: counted[k] for k in expected} == expected
    assert counted["dry_run"] is True
    assert await event_ids(hooks.api) == ids

    done = await purge(fresh_database_url, "--older-than-days", "30")
    assert {k: done[k] for k in expected} == expected
    assert await event_ids(hooks.api) == ids[2:]
    assert (await hooks.api.get(f"/v1/events/{ids[0]}")).status_code == 404
    (pending,) = await deliveries_of(hooks.api, ids[2])
    assert (pending["status"], len(pending["attempts"])) == ("pending", 1)
    assert await row_counts(hooks.db) == ledger  # the journal is never purged

    again = await purge(fresh_database_url, "--older-than-days", "30")
    assert {k: again[k] for k in expected} == {**dict.fromkeys(expected, 0), "kept_pending": 1}


async def test_purge_refuses_a_cut_off_under_a_day(fresh_database_url: str) -> None:
    url = fresh_database_url
    for days in ("0", "-5", "soon"):
        result = await asyncio.to_thread(run_cli, url, "purge", "--older-than-days", days)
        assert result.returncode == 2, result.stdout
        assert "older-than-days" in result.stderr
