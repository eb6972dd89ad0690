"""``kassa --help`` starts at once: help loads neither the web framework, the database drivers
nor Rich's Markdown, and ``kassa.cli.help`` draws every page exactly as Typer would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kassa.cli import app
from kassa.cli import help as kassa_help
from kassa.cli.common import _Typer
from tests.helpers import kassa_env
from tests.test_cli import EVERY_COMMAND

# What a help page must not import: the server, the database, and what only Typer's own help
# drawing needs (Rich's Markdown with markdown-it and Pygments, Rich's tracebacks).
HEAVY = (
    "sqlalchemy",
    "fastapi",
    "starlette",
    "pydantic",
    "asyncpg",
    "aiosqlite",
    "alembic",
    "uvicorn",
    "structlog",
    "httpx",
    "asyncio",
    "kassa.app",
    "kassa.kit.db",
    "kassa.migrations",
    "typer.rich_utils",
    "rich.markdown",
    "rich.traceback",
    "markdown_it",
    "pygments",
)

SHOW_HELP_AND_MODULES = """
import json, sys
from kassa.cli import main
sys.argv = ["kassa", *sys.argv[1:], "--help"]
try:
    main()
except SystemExit as exit:
    code = exit.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


@pytest.mark.parametrize(
    "command", [(), ("tenants",), ("keys", "create"), ("serve",), ("verify",)], ids=" ".join
)
def test_help_imports_nothing_heavy(tmp_path: Path, command: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SHOW_HELP_AND_MODULES, *command],
        env=kassa_env(f"sqlite:///{tmp_path / 'untouched.db'}", COLUMNS="100"),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    page, _, last = result.stdout.rstrip("\n").rpartition("\n")
    assert "Usage: kassa" in page, page
    shown = json.loads(last)
    assert shown["code"] == 0
    loaded = [
        name
        for name in shown["modules"]
        if any(name == heavy or name.startswith(heavy + ".") for heavy in HEAVY)
    ]
    assert loaded == [], f"kassa {' '.join(command)} --help imported {loaded}"
    assert not list(tmp_path.iterdir()), "--help must not create a file"


def pages(target: typer.Typer, args: list[str], monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The page ``args --help`` prints, drawn by ``kassa.cli.help`` and then by Typer, with
    colours."""
    import typer.rich_utils

    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setattr(typer.rich_utils, "FORCE_TERMINAL", True)
    runner = CliRunner()
    ours = runner.invoke(target, [*args, "--help"], prog_name="kassa", color=True)
    monkeypatch.setattr(kassa_help, "print_help", lambda command, ctx: False)
    typers = runner.invoke(target, [*args, "--help"], prog_name="kassa", color=True)
    assert ours.exit_code == typers.exit_code == 0, ours.output + typers.output
    return [ours.output, typers.output]


@pytest.mark.parametrize("columns", ["60", "100", "1000"])
@pytest.mark.parametrize("command", EVERY_COMMAND, ids=lambda c: " ".join(c) or "kassa")
def test_help_page_is_typers_page(
    monkeypatch: pytest.MonkeyPatch, command: tuple[str, ...], columns: str
) -> None:
    drawn: list[bool] = []
    draw = kassa_help.print_help

    def drawing(command: Any, ctx: Any) -> bool:
        drawn.append(draw(command, ctx))
        return drawn[-1]

    monkeypatch.setattr(kassa_help, "print_help", drawing)
    monkeypatch.setenv("COLUMNS", columns)
    ours, typers = pages(app, list(command), monkeypatch)
    assert drawn == [True], "Kassa's own help left the page to Typer"
    assert "\x1b[" in ours, "no colours: the comparison would miss styles"
    assert ours == typers


def richer_app() -> typer.Typer:
    """Commands whose help is more than paragraphs and `code`."""
    richer = _Typer(help="A group with a *list*:\n\n- one\n- two")

    @richer.command()
    def emphasis(
        name: str = typer.Option("x", help="a **bold** name"),
    ) -> None:
        """Say _hello_ with [a link](https://example.com)."""

    @richer.command(epilog="An epilog.")
    def epilogue() -> None:
        """Plain words."""

    return richer


@pytest.mark.parametrize("args", [[], ["emphasis"], ["epilogue"]], ids=" ".join)
def test_richer_help_is_left_to_typer(monkeypatch: pytest.MonkeyPatch, args: list[str]) -> None:
    drawn: list[bool] = []
    draw = kassa_help.print_help

    def drawing(command: Any, ctx: Any) -> bool:
        drawn.append(draw(command, ctx))
        return drawn[-1]

    monkeypatch.setattr(kassa_help, "print_help", drawing)
    monkeypatch.setenv("COLUMNS", "100")
    ours, typers = pages(richer_app(), args, monkeypatch)
    assert drawn == [False]
    link_id = re.compile(r"id=\d+;")  # a terminal link's id is new on every page
    assert link_id.sub("id=;", ours) == link_id.sub("id=;", typers)
