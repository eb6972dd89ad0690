"""Cursor pages: newest first, ``starting_after`` names the last object of the previous page."""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

ItemT = TypeVar("ItemT")

DEFAULT_LIMIT = 10
MAX_LIMIT = 100

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size, 1 to 100")]
StartingAfter = Annotated[
    str | None, Query(description="id of the last object of the previous page")
]


class Page(BaseModel, Generic[ItemT]):
    data: list[ItemT]
    has_more: bool


def split_page(rows: list[ItemT], limit: int) -> tuple[list[ItemT], bool]:
    """Rows were fetched with ``limit + 1``; the extra one only says there is more."""
    return rows[:limit], len(rows) > limit
