"""Idempotency keys: the first completed answer to a request is stored with the work it did, in
the same database transaction, and a retry with the same key gets that answer again.

A key belongs to a tenant. The same key with the same method, path and body (the same JSON, see
:func:`canonical_body`) replays the stored answer byte for byte (``Idempotent-Replayed: true``);
with anything else it is refused (422 ``idempotency_key_reused``). While the first request is in
flight a second one is refused (409 ``idempotency_key_in_use``, safe to retry): on PostgreSQL a
transaction-scoped advisory lock on the key says so; on SQLite every write is serialised, so the
second waits and replays. Errors found while doing the work (insufficient funds, say) are
answers too and are stored; a request refused while its body was parsed never reaches here and
is not.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import orjson
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.idempotency import repository
from kassa.idempotency.errors import (
    IdempotencyKeyInUse,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
)
from kassa.kit.db import Database
from kassa.kit.errors import KassaError
from kassa.kit.http import JSON_MEDIA_TYPE
from kassa.kit.problem import PROBLEM_MEDIA_TYPE, problem_json

HEADER = "idempotency-key"
REPLAYED_HEADER = ("idempotent-replayed", "true")
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class Answer:
    """An HTTP answer as bytes, ready to send or to store."""

    status: int
    media_type: str
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class Key:
    tenant_id: Any
    value: str
    fingerprint: str


def parse_key(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_KEY_LENGTH or not value.isprintable():
        raise InvalidIdempotencyKey(
            f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable characters"
        )
    return value


def key_for(tenant_id: Any, header: str | None, method: str, path: str, body: bytes) -> Key | None:
    value = parse_key(header)
    if value is None:
        return None
    return Key(tenant_id, value, fingerprint(method, path, body))


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests under one key the same request: method, path (with its query)
    and :func:`canonical_body`, each length-prefixed so no two lists of parts run together."""
    digest = hashlib.sha256()
    for part in (method.encode(), path.encode(), canonical_body(body)):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    return digest.hexdigest()


def _not_json(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


# One decoder made once: ``json.loads`` with hooks would build a new one for every body.
_DECODER = json.JSONDecoder(
    parse_int=orjson.Fragment, parse_float=orjson.Fragment, parse_constant=_not_json
)


def canonical_body(body: bytes) -> bytes:
    """The body as the fingerprint sees it: a JSON body as its JSON, so that whitespace and the
    order of an object's members do not matter (``{"amount": 7}`` after ``{"amount":7}`` is the
    same request, and ``{"a": "\\u0041"}`` the same as ``{"a": "A"}``); any other body, empty
    included, as its bytes. A tag byte keeps the two kinds apart.

    Numbers keep the text the client wrote (``orjson.Fragment`` puts it back as it came), so
    ``7``, ``7.0``, ``7.00`` and ``7e0`` are four requests: the amount grammar takes the first
    and refuses the others, and a dialect's major units tell ``10.5`` from ``10.50`` no better
    than by text. Comparing parsed values instead would need the grammar's own reading of each
    number here; keeping the text can only make two bodies differ that a client would also see
    as written differently, never make two different amounts the same. Strings and the
    structure are compared as parsed. A body Kassa's strict parser refuses (NaN, too deep, a
    lone surrogate that cannot be written back, not UTF-8) is compared by its bytes; it is
    refused before its key is looked at anyway. Parsing with the C scanner and writing with
    orjson costs a few microseconds for a request body.
    """
    try:
        parsed = _DECODER.decode(body.decode())
        return b"J" + orjson.dumps(parsed, option=orjson.OPT_SORT_KEYS)
    except (ValueError, RecursionError, orjson.JSONEncodeError):
        return b"B" + body


# A unit of work answers a status and a model (rendered as JSON), or the body's bytes already
# rendered (the dialects render their own documents).
Work = Callable[[AsyncConnection], Awaitable[tuple[int, BaseModel | bytes]]]
ErrorRenderer = Callable[[KassaError], "Answer"]


def problem_answer(error: KassaError) -> Answer:
    return Answer(error.status, PROBLEM_MEDIA_TYPE, problem_json(error))


def _body(model: BaseModel | bytes) -> bytes:
    return model if isinstance(model, bytes) else model.model_dump_json().encode()


class Sealer(Protocol):
    def seal(self, plain: bytes) -> bytes: ...

    def open(self, sealed: bytes) -> bytes: ...


async def run(
    db: Database,
    key: Key | None,
    work: Work,
    now: datetime,
    ttl: timedelta,
    *,
    box: Sealer | None = None,
    render_error: ErrorRenderer = problem_answer,
) -> Answer:
    """Do ``work`` in one unit of work; with a key, store or replay its answer (encrypted with
    ``box`` when one is given: an answer that shows a secret is not kept in the clear)."""
    if key is None:
        async with db.write() as conn:
            status, model = await work(conn)
        return Answer(status, JSON_MEDIA_TYPE, _body(model))
    async with db.write() as conn:
        if not await repository.try_lock(conn, key.tenant_id, key.value):
            raise IdempotencyKeyInUse(f"a request with key {key.value!r} is in flight")
        stored = await repository.stored_answer(conn, key.tenant_id, key.value)
        if stored is not None and stored.expires_at > now:
            if stored.fingerprint != key.fingerprint:
                raise IdempotencyKeyReused(
                    f"the key {key.value!r} was used for a different request"
                )
            body = bytes(stored.body)
            if stored.sealed:
                if box is None:
                    raise RuntimeError("a sealed idempotent answer needs the secret box")
                body = box.open(body)
            return Answer(stored.status_code, stored.media_type, body, [REPLAYED_HEADER])
        if stored is not None:  # expired: the key is free again
            await repository.delete_answer(conn, key.tenant_id, key.value)
        try:
            async with conn.begin_nested():
                status, model = await work(conn)
            answer = Answer(status, JSON_MEDIA_TYPE, _body(model))
        except KassaError as error:
            if error.status >= 500:
                raise  # not the request's fault: nothing is stored, so a retry may do it
            answer = render_error(error)
        kept = repository.StoredAnswer(
            fingerprint=key.fingerprint,
            status_code=answer.status,
            media_type=answer.media_type,
            body=answer.body if box is None else box.seal(answer.body),
            sealed=box is not None,
            expires_at=now + ttl,
        )
        await repository.insert_answer(conn, key.tenant_id, key.value, kept, now)
    return answer


async def sweep(db: Database, now: datetime) -> int:
    """Delete expired keys; how many went."""
    async with db.write() as conn:
        return await repository.delete_expired(conn, now)
