"""``/docs`` and ``/redoc`` work offline: the pages name only Kassa's own URLs, and each answers."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.helpers import KassaServer

# Every URL a page makes the browser load: attributes, and the document Swagger UI is told to read.
REFERENCES = re.compile(r"""(?:src|href|spec-url)="([^"]*)"|url: '([^']*)'""")
EXPECTED_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}


@pytest.mark.parametrize(
    ("page", "loads"),
    [
        ("/docs", {"swagger-ui-bundle.js", "swagger-ui.css", "favicon.png", "openapi.json"}),
        ("/redoc", {"redoc.standalone.js", "favicon.png", "openapi.json"}),
    ],
)
async def test_a_docs_page_loads_only_kassas_own_assets(
    server: KassaServer, page: str, loads: set[str]
) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        answer = await client.get(page)
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/html")
        html = answer.text
        assert "://" not in html, html  # no absolute URL: no CDN, no font service
        urls = {first or second for first, second in REFERENCES.findall(html)}
        assert {url.rsplit("/", 1)[1] for url in urls} == loads
        for url in urls:
            assert url.startswith("/"), url
            assert not url.startswith("//"), url
            asset = await client.get(url)
            assert asset.status_code == 200, url
            expected = EXPECTED_TYPES["." + url.rsplit(".", 1)[1]]
            assert asset.headers["content-type"].split(";")[0] == expected, url
            assert len(asset.content) > 1000, url  # the real file, not an empty answer
        if page == "/docs":
            assert "SwaggerUIBundle" in (await client.get(urls_ending(urls, ".js"))).text
        else:
            assert "Redoc" in (await client.get(urls_ending(urls, ".js"))).text


def urls_ending(urls: set[str], suffix: str) -> str:
    (found,) = (url for url in urls if url.endswith(suffix))
    return found


async def test_only_the_named_assets_are_served(server: KassaServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
        unknown = await client.get("/docs/assets/index.html")
        assert unknown.status_code == 404
        assert unknown.headers["content-type"] == "application/problem+json"
        refused = await client.post("/docs/assets/swagger-ui.css")
        assert refused.status_code == 405
        assert refused.headers["allow"] == "GET, HEAD"
        head = await client.head("/docs/assets/swagger-ui.css")
        assert head.status_code == 200
        assert head.content == b""
