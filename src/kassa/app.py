"""The ASGI application: ``create_app()`` wires settings, database, routers and error handlers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import structlog
from fastapi import FastAPI
from sqlalchemy.exc import SQLAlchemyError

from kassa import __version__, compat, docs_pages, openapi_doc, workers
from kassa.auth.service import Authenticator
from kassa.checkouts.endpoints import router as checkouts_router
from kassa.checkouts.page import router as checkout_page_router
from kassa.config import Settings
from kassa.customers.endpoints import router as customers_router
from kassa.events.endpoints import router as events_router
from kassa.idempotency import service as idempotency
from kassa.instruments.endpoints import router as instruments_router
from kassa.kit import dberrors
from kassa.kit.clock import Clock, SystemClock
from kassa.kit.db import Database
from kassa.kit.errors import ServiceUnavailable
from kassa.kit.logging import configure_logging
from kassa.kit.problem import install_problem_handlers
from kassa.ops import router as ops_router
from kassa.payouts.connectors import Connector
from kassa.payouts.endpoints import router as payouts_router
from kassa.sca.endpoints import router as sca_router
from kassa.state import AppState
from kassa.wallets.batch_endpoints import router as wallets_batch_router
from kassa.wallets.endpoints import router as wallets_router
from kassa.wallets.hotpath import HotPath
from kassa.webhooks.endpoints import router as webhooks_router

log = structlog.get_logger("kassa.app")

DESCRIPTION = """
Kassa keeps customers' money in wallets on a double-entry ledger and pays it out.
Amounts are integers in the currency's minor units. Authenticate with
`Authorization: Bearer <API key>`; errors are RFC 9457 `application/problem+json`
documents with a stable `code`.
"""


SWEEP_EVERY_SECONDS = 600


async def _sweep_idempotency_keys(state: AppState) -> None:
    """Delete expired idempotency keys now and then (each worker does; deleting twice is
    harmless). A failed sweep is logged and tried again next time."""
    while True:
        try:
            swept = await idempotency.sweep(state.db, state.clock.now())
            if swept:
                log.info("idempotency_keys_swept", count=swept)
        except (ServiceUnavailable, SQLAlchemyError, OSError) as error:
            log.warning("idempotency_sweep_failed", error=dberrors.describe(error))
        await asyncio.sleep(SWEEP_EVERY_SECONDS)


def create_app(
    settings: Settings | None = None,
    clock: Clock | None = None,
    connectors: dict[str, Connector] | None = None,
) -> HotPath:
    """The app; tests may give it a clock and payout connectors of their own."""
    settings = settings or Settings.from_env()
    configure_logging(settings.log_level, settings.log_format)
    db = Database(settings.database_url, pool_size=settings.pool_size)
    clock = clock or SystemClock()
    state = AppState(
        settings=settings,
        db=db,
        clock=clock,
        authenticator=Authenticator(db, settings.auth_cache_seconds, clock),
        connectors=connectors or workers.default_connectors(db, settings),
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await db.open()
        sweeper = asyncio.create_task(_sweep_idempotency_keys(state))
        stop_working = asyncio.Event()
        background = None
        if workers.runs_in_serve(settings, db.backend):
            background = asyncio.create_task(
                workers.run(db, state.box, state.clock, settings, state.connectors, stop_working)
            )
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            if background is not None:
                stop_working.set()  # what is in flight is finished and recorded first
                await background
            await db.close()

    app = FastAPI(
        title="Kassa",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # A path with a trailing slash is not another name for one without: 404, never a 307
        # to an absolute http:// URL the client may not be able to follow.
        redirect_slashes=False,
        # FastAPI's pages load their assets from CDNs; kassa.docs_pages serves them itself.
        docs_url=None,
        redoc_url=None,
    )
    app.state.kassa = state
    install_problem_handlers(app)
    app.include_router(ops_router)
    app.include_router(wallets_router)
    app.include_router(wallets_batch_router)
    app.include_router(events_router)
    app.include_router(webhooks_router)
    app.include_router(instruments_router)
    app.include_router(payouts_router)
    app.include_router(customers_router)
    app.include_router(sca_router)
    app.include_router(checkouts_router)
    app.include_router(checkout_page_router)
    dialects = compat.routers(settings)
    for dialect in dialects:
        app.include_router(dialect)
    openapi_doc.install(app)
    docs_pages.install(app)
    # Routes marked ``direct`` are served by the ASGI front: /v1's wallet creation, a payout's
    # creation and status changes, and the dialects' money routes.
    return HotPath(app, state, [wallets_router, payouts_router, *dialects])
