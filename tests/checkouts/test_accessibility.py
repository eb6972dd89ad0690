"""axe-core (the copy ``axe-playwright-python`` ships) over each state of the hosted page, in
headless Chromium: no serious or critical violation in the form, the form with an inline error,
a fixed-amount session, an expired session and a link that is not valid, a card added and a
card refused, the fee and total the server shows without JavaScript, and the outcome page; and
each lays out without horizontal scrolling at 360 px.

The states reached without JavaScript (axe itself needs it) and the outcome page (which moves
on by itself after 2 s) are fetched as the server sends them and checked with ``set_content``
at the page's own URL, the outcome page without its refresh.

The contexts bypass the page's Content-Security-Policy only so that axe's script can be put in;
the policy itself is checked in ``test_page.py``.

Mutations tried (on a copy of ``src`` run with ``PYTHONPATH``): the amount field's ``<label>``
removed: caught (``label-title-only``, serious, at both widths); the card number's ``<label>``
removed: caught the same way, in each card state.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page

from tests.checkouts.conftest import Merchant, Shop

SERIOUS = {"serious", "critical"}


async def _check(
    browser: Browser, url: str, action: Any = None, html: str | None = None
) -> list[str]:
    problems = []
    for width in (1024, 360):
        context = await browser.new_context(
            bypass_csp=True, viewport={"width": width, "height": 800}
        )
        page: Page = await context.new_page()
        await page.goto(url)
        if html is not None:
            await page.set_content(html)
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


async def _bad_card(page: Page) -> None:
    await page.fill("#card-holder", "Ada Lovelace")
    await page.fill("#card-number", "4111 1111 1111 1112")
    await page.fill("#card-month", "13")
    await page.fill("#card-year", "2020")
    await page.click("button[value=add_card]")
    await page.wait_for_selector("#card-number-error")


async def _good_card(page: Page) -> None:
    await page.fill("#card-holder", "Ada Lovelace")
    await page.fill("#card-number", "4111 1111 1111 1111")
    await page.fill("#card-month", "12")
    await page.fill("#card-year", "2099")
    await page.click("button[value=add_card]")
    await page.wait_for_selector("#card-status p")


async def test_the_card_form_fee_review_and_outcome_pass_axe(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    form = await shop.checkout(merchant_site.url)
    problems = []
    problems += await _check(browser, form["url"], _bad_card)
    problems += await _check(browser, form["url"], _good_card)
    async with httpx.AsyncClient(timeout=30) as client:
        page = await client.get(form["url"])
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
        method = re.search(r'name="method" value="([^"]+)"', page.text)
        assert csrf is not None
        assert method is not None
        body = {"csrf": csrf[1], "amount": "15", "method": method[1]}
        review = await client.post(form["url"], data={**body, "action": "review"})
        assert "€15.65" in review.text
        done = await client.post(form["url"], data={**body, "action": "confirm"})
        assert 'id="done-total"' in done.text
    # As a browser without JavaScript has it: the button the script would remove is kept.
    without_script = re.sub(r"<script[^>]*></script>", "", review.text)
    problems += await _check(browser, form["url"], html=without_script)
    without_refresh = re.sub(r'<meta http-equiv="refresh"[^>]*>', "", done.text)
    assert "refresh" not in without_refresh
    problems += await _check(browser, form["url"], html=without_refresh)
    assert problems == []
