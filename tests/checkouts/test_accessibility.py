"""axe-core (the copy ``axe-playwright-python`` ships) over each state of the hosted page, in
headless Chromium: no serious or critical violation in the form, the form with an inline error,
a fixed-amount session, an expired session and a link that is not valid; and each lays out
without horizontal scrolling at 360 px.

The contexts bypass the page's Content-Security-Policy only so that axe's script can be put in;
the policy itself is checked in ``test_page.py``.

Mutation tried (on a copy of ``src`` run with ``PYTHONPATH``): the amount field's ``<label>``
removed: caught (``label-title-only``, serious, at both widths).
"""

from __future__ import annotations

from typing import Any

import httpx
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page

from tests.checkouts.conftest import Merchant, Shop

SERIOUS = {"serious", "critical"}


async def _check(browser: Browser, url: str, action: Any = None) -> list[str]:
    problems = []
    for width in (1024, 360):
        context = await browser.new_context(
            bypass_csp=True, viewport={"width": width, "height": 800}
        )
        page: Page = await context.new_page()
        await page.goto(url)
        if action is not None:
            await action(page)
        results = await Axe().run(page)
        for violation in results.response["violations"]:
            if violation["impact"] in SERIOUS:
                problems.append(f"{url} @{width}px: {violation['id']} ({violation['impact']})")
        if await page.evaluate("document.documentElement.scrollWidth") > width:
            problems.append(f"{url} @{width}px: scrolls sideways")
        await context.close()
    return problems


async def _error(page: Page) -> None:
    await page.fill("#amount", "999999")
    await page.check("input[name=method]")
    await page.click("button[value=confirm]")
    await page.wait_for_selector("#amount-error")


async def test_every_state_of_the_page_passes_axe(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    form = await shop.checkout(merchant_site.url, max_amount=5_000)
    fixed = await shop.checkout(merchant_site.url, fixed_amount=1_000, experience="webview")
    expired = await shop.checkout(merchant_site.url)
    assert (await shop.api.post(f"/v1/checkouts/{expired['id']}/expire")).status_code == 200
    problems = []
    problems += await _check(browser, form["url"])
    problems += await _check(browser, form["url"], _error)
    problems += await _check(browser, fixed["url"])
    problems += await _check(browser, expired["url"])
    problems += await _check(browser, expired["url"][:-4] + "AAAA")
    assert problems == []
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(form["url"])
    assert '<html lang="en">' in page.text
