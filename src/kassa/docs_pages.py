"""``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), with every asset served by Kassa itself.

FastAPI's own pages load their script, stylesheet and icon from public CDNs (and ReDoc's its
fonts from Google), so behind a firewall they are a blank page. Here the pages name only
``/docs/assets/...``, answered from files that a PyPI package ships: ``fastapi-offline``, whose
releases carry the current Swagger UI 5 and ReDoc 2 builds (and ``uv.lock`` pins which). Only its
files are used, not its app factory. ``swagger-ui-bundle`` was looked at first, but its last
release (1.1.0) carries Swagger UI 4.15, which cannot render an OpenAPI 3.1 document such as
Kassa's, and no ReDoc.

Each asset is one named GET route (404 for any other name, 405 with ``Allow`` for another
method), not a static-files mount that would answer for a whole folder.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from kassa.kit.errors import NotFound

ASSETS_PATH = "/docs/assets"
ASSETS_FOLDER = Path(fastapi_offline.__file__).parent / "static"
# The files the pages use, and how each is served.
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "redoc.standalone.js": "text/javascript; charset=utf-8",
    "favicon.png": "image/png",
}
# An asset changes only with an upgrade of Kassa: an hour's caching, then its ETag is checked.
CACHE_CONTROL = "public, max-age=3600"


def install(app: FastAPI) -> None:
    """The two pages and their assets; ``app`` must be made with ``docs_url=None`` and
    ``redoc_url=None`` (FastAPI's pages, which use CDNs)."""

    def asset_url(request: Request, name: str) -> str:
        return f"{request.scope.get('root_path', '')}{ASSETS_PATH}/{name}"

    def openapi_url(request: Request) -> str:
        return f"{request.scope.get('root_path', '')}{app.openapi_url}"

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} API",
            swagger_js_url=asset_url(request, "swagger-ui-bundle.js"),
            swagger_css_url=asset_url(request, "swagger-ui.css"),
            swagger_favicon_url=asset_url(request, "favicon.png"),
            oauth2_redirect_url=None,  # API keys, no OAuth: no redirect page
            # No badge that would send the document to the public validator.
            swagger_ui_parameters={"validatorUrl": None},
        )

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        return get_redoc_html(
            openapi_url=openapi_url(request),
            title=f"{app.title} API",
            redoc_js_url=asset_url(request, "redoc.standalone.js"),
            redoc_favicon_url=asset_url(request, "favicon.png"),
            with_google_fonts=False,
        )

    @app.get(f"{ASSETS_PATH}/{{name}}", include_in_schema=False)
    async def asset(name: str) -> FileResponse:
        media_type = ASSETS.get(name)
        if media_type is None:
            raise NotFound(f"no documentation asset {name}")
        return FileResponse(
            ASSETS_FOLDER / name, media_type=media_type, headers={"Cache-Control": CACHE_CONTROL}
        )
