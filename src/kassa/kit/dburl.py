"""The database URL an operator sets, and what it says: which backend, and the form each driver
wants. Kept apart from ``kit.db`` so that reading it costs no driver import (the CLI's start)."""

from __future__ import annotations

import enum
from dataclasses import dataclass

DEFAULT_DATABASE_URL = "sqlite:///./kassa.db"


class Backend(enum.StrEnum):
    SQLITE = "sqlite"
    POSTGRESQL = "postgresql"


@dataclass(frozen=True)
class DatabaseUrl:
    """The one URL an operator sets, and the forms each driver wants of it."""

    raw: str

    @property
    def backend(self) -> Backend:
        scheme = self.raw.split(":", 1)[0].split("+", 1)[0]
        if scheme == "sqlite":
            return Backend.SQLITE
        if scheme in ("postgresql", "postgres"):
            return Backend.POSTGRESQL
        raise ValueError(
            f"KASSA_DATABASE_URL must start with sqlite:// or postgresql://, not {scheme}://"
        )

    @property
    def sqlalchemy_url(self) -> str:
        rest = self.raw.split("://", 1)[1]
        if self.backend is Backend.SQLITE:
            return f"sqlite+aiosqlite://{rest}"
        return f"postgresql+asyncpg://{_hosts_as_query(rest)}"

    @property
    def asyncpg_dsn(self) -> str:
        return "postgresql://" + self.raw.split("://", 1)[1]

    def redacted(self) -> str:
        """The URL with any password replaced, for logs."""
        head, sep, tail = self.raw.partition("://")
        if "@" not in tail:
            return self.raw
        creds, at, host = tail.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{head}{sep}{user}:***{at}{host}" if ":" in creds else self.raw


def _hosts_as_query(rest: str) -> str:
    """A libpq-style multi-host URL's part after ``scheme://`` in SQLAlchemy's form.

    ``user@h1:5432,h2:5432/db?target_session_attrs=read-write`` (as libpq and asyncpg take it:
    try each host in turn, keep the first that is the writable leader) is, for SQLAlchemy,
    ``user@/db?host=h1:5432&host=h2:5432&target_session_attrs=read-write``; SQLAlchemy hands
    the hosts and the other parameters to asyncpg. A host without a port gets 5432 (IPv6
    literals are not supported in a list: use names). A single host passes through unchanged."""
    end = min((i for i in (rest.find("/"), rest.find("?")) if i >= 0), default=len(rest))
    netloc, tail = rest[:end], rest[end:].removeprefix("/")
    userinfo, at, hostlist = netloc.rpartition("@")
    if "," not in hostlist:
        return rest
    hosts = [host if ":" in host else f"{host}:5432" for host in hostlist.split(",")]
    database, _, query = tail.partition("?")
    params = "&".join([*(f"host={host}" for host in hosts), *([query] if query else [])])
    return f"{userinfo}{at}/{database}?{params}"
