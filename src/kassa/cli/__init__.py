"""The ``kassa`` command: serve, worker, migrate, tenants, keys, verify, purge, stuck,
secret-key, reseal.

Each command imports what it needs when it runs, so that ``kassa --help`` and the quick
commands start without loading the web framework, the database drivers or the dialects. The
commands are in ``server`` (serve, worker, secret-key, reseal, migrate), ``accounts`` (tenants,
keys) and ``operations`` (verify, purge, stuck); what they share is in ``common``; ``help`` draws
the help pages without the Markdown and traceback parts of Rich that Typer would import."""

from __future__ import annotations

# Importing a module registers its commands; ``kassa --help`` lists them in this order.
# isort: off
from kassa.cli import server  # noqa: F401
from kassa.cli import accounts  # noqa: F401
from kassa.cli import operations  # noqa: F401

# isort: on
from kassa.cli.common import app

__all__ = ["app", "main"]


def main() -> None:
    app(prog_name="kassa")
