"""``POST /v1/wallets/batch``: a bulk import through the same rules as ``POST /v1/wallets``
(``wallets.service.create_wallets``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection

from kassa.auth.deps import WalletsWrite
from kassa.idempotency import service as idempotency
from kassa.idempotency.http import respond
from kassa.kit.db import Database
from kassa.kit.errors import KassaError
from kassa.kit.http import (
    body_schema,
    json_response,
    parse_json,
    read_body,
    refuse_unknown_query,
    validate,
)
from kassa.kit.openapi import doc
from kassa.kit.problem import problem_document
from kassa.state import app_state
from kassa.wallets import service
from kassa.wallets.schemas import (
    MAX_BATCH_WALLETS,
    NewWallet,
    NewWalletBatch,
    WalletBatchEnvelope,
    WalletBatchItem,
    WalletBatchOut,
    WalletOut,
)

router = APIRouter(prefix="/v1", tags=["wallets"], dependencies=[Depends(refuse_unknown_query)])


# A thousand wallets with names and metadata do not fit in the 64 KiB of other requests.
MAX_BATCH_BODY_BYTES = 4 * 1024 * 1024


@router.post(
    "/wallets/batch",
    openapi_extra=body_schema(NewWalletBatch),
    **doc(
        WalletBatchOut,
        200,
        (
            413,
            f"the body is over {MAX_BATCH_BODY_BYTES // (1024 * 1024)} MiB (`payload_too_large`)",
        ),
        (
            422,
            f'the body is not `{{"wallets": [...]}}` with 1 to {MAX_BATCH_WALLETS} items'
            " (`validation_failed`): nothing was created",
        ),
        summary="Create wallets in bulk",
    ),
)
async def create_wallets(request: Request, principal: WalletsWrite) -> Response:
    """A bulk import: up to 1,000 wallets, each created or refused on its own, as `POST
    /v1/wallets` would (the same rules, the same `wallet.created` event, the same problem
    document for a refusal: 409 `wallet_exists`, 422 `validation_failed`), in the order asked.
    A customer and currency asked for twice is created once, and refused the second time.
    The answer is 200 whatever became of each item; with an `Idempotency-Key` a retry replays
    it."""
    raw = await read_body(request, MAX_BATCH_BODY_BYTES)
    items = parse_json(raw, WalletBatchEnvelope).wallets
    state = app_state(request)
    now = state.clock.now()
    parsed: list[NewWallet | KassaError] = []
    for item in items:
        try:
            parsed.append(validate(NewWallet, item))
        except KassaError as refused:  # the item's own refusal, as the single route's
            parsed.append(refused)

    async def create(target: AsyncConnection | Database) -> WalletBatchOut:
        valid = [item for item in parsed if isinstance(item, NewWallet)]
        made = iter(await service.create_wallets(target, principal.tenant_id, valid, now))
        return _batch_answer(
            [next(made) if isinstance(item, NewWallet) else item for item in parsed]
        )

    if request.headers.get(idempotency.HEADER) is None:
        return json_response(await create(state.db))

    async def work(conn: AsyncConnection) -> tuple[int, BaseModel]:
        return 200, await create(conn)

    return await respond(request, state, principal, raw, now, work)


def _batch_answer(results: list[WalletOut | KassaError]) -> WalletBatchOut:
    data = [
        WalletBatchItem(status=201, wallet=result, error=None)
        if isinstance(result, WalletOut)
        else WalletBatchItem(status=result.status, wallet=None, error=problem_document(result))
        for result in results
    ]
    created = sum(1 for item in data if item.wallet is not None)
    return WalletBatchOut(data=data, created=created, refused=len(data) - created)
