"""What the commands share: the command groups, checked settings, the database a command
works on, failing cleanly, and printing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from typer.core import TyperCommand, TyperGroup
from typer.models import CommandFunctionType

from kassa import compat
from kassa.config import Settings
from kassa.kit.clock import isoformat
from kassa.kit.dburl import DEFAULT_DATABASE_URL, Backend, DatabaseUrl
from kassa.kit.errors import KassaError

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

    from kassa.kit.db import Database
    from kassa.kit.secretbox import SecretBox

T = TypeVar("T")


def _show_flags_as_flags(params: list[Any]) -> list[Any]:
    """A flag (``--json``, ``--help``) shown without the ``<bool>`` Typer puts beside it, which
    reads as if the flag took a value."""
    for param in params:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    return params


def _print_help(command: TyperCommand | TyperGroup, ctx: Any) -> bool:
    """Typer's help page without Typer's import of Rich's Markdown and tracebacks (most of the
    start of ``kassa --help``); False where the page needs Typer's own drawing."""
    from kassa.cli.help import print_help

    return print_help(command, ctx)


def _help_flag_false(option: Any) -> Any:
    """The ``--help`` flag, False when not given: Typer leaves it None, and then checks None
    as a bool through Pydantic, which it imports for that (a tenth of a second before every
    subcommand, ``kassa secret-key`` as much as ``kassa keys create --help``)."""
    if option is not None and option.default is None:
        option.default = False
    return option


class _Command(TyperCommand):
    def get_params(self, ctx: Any) -> list[Any]:
        return _show_flags_as_flags(super().get_params(ctx))

    def get_help_option(self, ctx: Any) -> Any:
        return _help_flag_false(super().get_help_option(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        if not _print_help(self, ctx):
            super().format_help(ctx, formatter)


class _Group(TyperGroup):
    def get_params(self, ctx: Any) -> list[Any]:
        return _show_flags_as_flags(super().get_params(ctx))

    def get_help_option(self, ctx: Any) -> Any:
        return _help_flag_false(super().get_help_option(ctx))

    def format_help(self, ctx: Any, formatter: Any) -> None:
        if not _print_help(self, ctx):
            super().format_help(ctx, formatter)


class _Typer(typer.Typer):
    """Kassa's command groups: help as Markdown, so that a docstring's paragraphs are reflowed
    to the terminal (Typer's default keeps each source line break, and the command list cut
    sentences in two), and flags shown as flags."""

    def __init__(self, **options: Any) -> None:
        super().__init__(cls=_Group, rich_markup_mode="markdown", **options)

    def command(
        self, *args: Any, **options: Any
    ) -> Callable[[CommandFunctionType], CommandFunctionType]:
        return super().command(*args, cls=_Command, **options)


app = _Typer(
    help="Kassa: a wallet ledger and withdrawal service. The database comes from"
    " KASSA_DATABASE_URL (default: `sqlite:///./kassa.db`).",
    no_args_is_help=True,
    add_completion=False,
)
tenants_app = _Typer(help="Create and list tenants (merchants).", no_args_is_help=True)
keys_app = _Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(keys_app, name="keys")

JsonFlag = Annotated[bool, typer.Option("--json", help="print the result as one JSON object")]


def fail(message: str, code: int = 2) -> NoReturn:
    typer.echo(f"kassa: {message}", err=True)
    raise typer.Exit(code)


def settings(*, creates: bool = False) -> Settings:
    """The settings; a command that does not create the database (``creates``) refuses to run
    where none is configured and no ``./kassa.db`` exists, instead of making an empty one."""
    found = Settings.from_env()
    try:
        url = DatabaseUrl(found.database_url)
        url.backend  # noqa: B018 - validates the URL
        compat.check_names(found)  # validates KASSA_DIALECTS
    except ValueError as error:
        fail(str(error))
    default = found.database_url == DEFAULT_DATABASE_URL
    if not creates and default and not Path(DEFAULT_DATABASE_URL.split("///", 1)[1]).exists():
        fail(
            f"no Kassa database here: {Path.cwd() / 'kassa.db'} does not exist. Run this in the"
            " folder where 'kassa serve' keeps kassa.db, or set KASSA_DATABASE_URL"
        )
    return found


def backend(settings: Settings) -> Backend:
    return DatabaseUrl(settings.database_url).backend


def database(*, creates: bool = False, migrated: bool = False) -> Settings:
    """The settings of a command that works on the database, once it is ready: the SQLite
    default migrates itself; PostgreSQL must have been migrated on purpose, and a command that
    runs for long (``migrated``) refuses a PostgreSQL database that is not at the newest
    migration."""
    from kassa import migrations

    checked = settings(creates=creates)
    if backend(checked) is Backend.SQLITE:
        migrations.upgrade(checked.database_url)
    elif migrated:

        async def current(db: Database) -> str | None:
            return await migrations.current_revision(db)

        found = run(checked, current)
        head = migrations.head_revision(checked.database_url)
        if found != head:
            fail(f"the database is at migration {found}, not {head}: run 'kassa migrate' first")
    return checked


def run(settings: Settings, work: Callable[[Database], Awaitable[T]]) -> T:
    """``work`` done on the command's database (one connection); a refusal is the command's
    error message and exit code 1."""
    import asyncio

    from kassa.kit.db import Database

    async def main() -> T:
        db = Database(settings.database_url, pool_size=1)
        try:
            return await work(db)
        finally:
            await db.close()

    try:
        return asyncio.run(main())
    except KassaError as error:
        fail(error.detail, 1)


def read(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` done in one read-only transaction on the command's database."""

    async def in_transaction(db: Database) -> T:
        async with db.read() as conn:
            return await work(conn)

    return run(settings, in_transaction)


def write(settings: Settings, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """``work`` done in one transaction on the command's database, committed."""

    async def in_transaction(db: Database) -> T:
        async with db.write() as conn:
            return await work(conn)

    return run(settings, in_transaction)


def secret_box(settings: Settings) -> SecretBox:
    """The operator's key for secrets at rest; a bad KASSA_SECRET_KEY stops the command."""
    from kassa.kit.secretbox import SecretBox, SecretKeyError

    try:
        return SecretBox.from_settings(settings)
    except (SecretKeyError, OSError) as error:
        fail(str(error))


def tenant_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        fail(f"{value!r} is not a tenant id")


def show(obj: dict[str, Any], as_json: bool) -> None:
    """One object as JSON, or as one ``key: value`` line per member."""
    if as_json:
        typer.echo(json.dumps(obj))
    else:
        for key, value in obj.items():
            typer.echo(f"{key}: {value}")


def when(moment: datetime | None) -> str | None:
    return None if moment is None else isoformat(moment)
