"""structlog set-up: one line per event, JSON or console; secrets are never passed to it.

Nor are a request's values, even by accident. A traceback shows no frame's local variables
(plain tracebacks only, never rich's, which would print the request body beside the code), and
in each exception it shows, an error from the database or from validation is told by its kind
alone: a statement's error may quote the values it was given (asyncpg's ``DETAIL: Key
(reference)=(...)``), and a validation error quotes its input. A lost database connection is
logged with no traceback at all (``kit.dberrors`` logs the outage itself, once).

Libraries' own log records (asyncpg's, SQLAlchemy's) go through the same processors.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
import traceback

import asyncpg
import structlog
from pydantic import ValidationError
from sqlalchemy.exc import StatementError
from structlog.typing import EventDict, Processor, WrappedLogger

from kassa.kit import dberrors
from kassa.kit.errors import ServiceUnavailable

_CAUSE = "\nThe above exception was the direct cause of the following exception:\n\n"
_CONTEXT = "\nDuring handling of the above exception, another exception occurred:\n\n"


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    shared: list[Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        format_exc_info_safely,
    ]
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *shared, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    _route_library_records(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *shared],
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )


class _LibraryHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Where the standard library's warnings and errors (asyncpg's, SQLAlchemy's) go: to
    whatever ``sys.stderr`` is when they are written, as structlog's own lines."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def _route_library_records(formatter: logging.Formatter) -> None:
    root = logging.getLogger()
    handler = next((h for h in root.handlers if isinstance(h, _LibraryHandler)), None)
    if handler is None:
        handler = _LibraryHandler(sys.stderr)
        handler.setLevel(logging.WARNING)
        root.addHandler(handler)
    handler.setFormatter(formatter)


def format_exc_info_safely(
    _logger: WrappedLogger, _method: str, event_dict: EventDict
) -> EventDict:
    """structlog's ``format_exc_info``, with :func:`format_exception` for the traceback."""
    exc_info = event_dict.pop("exc_info", None)
    if not exc_info:
        return event_dict
    if isinstance(exc_info, BaseException):
        error: BaseException | None = exc_info
    elif isinstance(exc_info, tuple):
        error = exc_info[1]
    else:
        error = sys.exc_info()[1]
    if error is None:
        return event_dict
    if isinstance(error, ServiceUnavailable):  # an outage: kit.dberrors logs it, once
        event_dict["error"] = dberrors.describe(error.__cause__ or error)
    elif dberrors.connection_lost(error):
        event_dict["error"] = dberrors.describe(error)
    else:
        event_dict["exception"] = format_exception(error)
    return event_dict


def format_exception(error: BaseException) -> str:
    """``error``'s traceback as Python prints it (with the errors it came from), but with
    each database or validation error's message replaced by :func:`safe_message`."""
    chain: list[tuple[BaseException, str]] = []
    current: BaseException | None = error
    link = ""
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, _CAUSE
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, _CONTEXT
        else:
            current = None
    parts: list[str] = []
    for exception, link_to_next in reversed(chain):  # the first error raised first
        if exception.__traceback__ is not None:
            parts.append("Traceback (most recent call last):\n")
            parts.extend(traceback.format_tb(exception.__traceback__))
        kind = type(exception)
        name = kind.__qualname__
        if kind.__module__ != "builtins":
            name = f"{kind.__module__}.{name}"
        message = safe_message(exception)
        parts.append(f"{name}: {message}\n" if message else f"{name}\n")
        parts.append(link_to_next)
    return "".join(parts).rstrip("\n")


def safe_message(error: BaseException) -> str:
    """``str(error)``, unless it could quote a request's values: then what kind of error it
    is (SQLSTATE and the schema's names, or each field's error type and place)."""
    if isinstance(error, asyncpg.PostgresError):
        names = {
            "constraint": error.constraint_name,
            "table": error.table_name,
            "column": error.column_name,
        }
        named = "".join(f", {key} {value}" for key, value in names.items() if value)
        return f"(SQLSTATE {error.sqlstate}{named}; message withheld)"
    if isinstance(error, StatementError):
        return f"{dberrors.describe(error)} [SQL: {error.statement}] (message withheld)"
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'value'}: {item['type']}"
            for item in error.errors(include_url=False, include_input=False)
        )
        return f"{error.error_count()} validation error(s) for {error.title}: {problems}"
    if _is_driver_error(error):
        return "(message withheld)"
    return _plain_message(error)


def _is_driver_error(error: BaseException) -> bool:
    """asyncpg's other errors (one that encodes an argument quotes it) and SQLAlchemy's
    adapters of them; SQLite's messages name tables and columns only, and are kept."""
    if isinstance(error, sqlite3.Error):
        return False
    module = type(error).__module__
    return module.startswith(("asyncpg", "sqlalchemy.dialects"))


def _plain_message(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break the log line
        return "(message unprintable)"
