"""The fee and total without JavaScript: *Show fee and total* (the form's first button, so also
what Enter does) has the server show them, by the payout's own fee code, before the customer
confirms; every re-rendered form shows them; the outcome page shows amount, fee and total. With
JavaScript the button is gone and the live total stays as it was.

Mutation tried (on a copy of ``src`` run with ``PYTHONPATH``): ``render.fee_and_total``
answering ``("-", "-")`` always: caught (``#fee`` shows ``-``).
"""

from __future__ import annotations

import re

from playwright.async_api import Browser

from tests.checkouts.conftest import Merchant, Shop
from tests.checkouts.test_page import SCREENSHOTS, _open, _query


async def test_without_javascript_the_fee_and_total_are_shown_before_and_after_confirming(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"], javascript=False, width=360)
    assert await page.locator("#fee").inner_text() == "-"
    await page.fill("#amount", "20")
    await page.check("input[name=method]")
    await page.click("button[value=review]")
    # 0.50 + 1 % of 20.00 = 0.70, by the server.
    assert await page.locator("#fee").inner_text() == "€0.70"
    assert await page.locator("#total").inner_text() == "€20.70"
    assert "Check the fee and the total" in await page.locator("#notice").inner_text()
    # What was entered is kept, and nothing was created or held.
    assert await page.locator("#amount").input_value() == "20"
    assert await page.locator("input[name=method]").is_checked()
    assert await shop.held() == 0
    payouts = (await shop.api.get("/v1/payouts", params={"wallet_id": shop.wallet["id"]})).json()
    assert payouts["data"] == []
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=str(SCREENSHOTS / "checkout-review-360.png"), full_page=True)
    await page.click("button[value=confirm]")
    assert await page.locator("h1").inner_text() == "Withdrawal confirmed"
    assert await page.locator("#done-amount").inner_text() == "€20.00"
    assert await page.locator("#done-fee").inner_text() == "€0.70"
    assert await page.locator("#done-total").inner_text() == "€20.70"
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert _query(page.url)["status"] == ["completed"]
    assert await shop.held() == 2_070
    await page.context.close()


async def test_enter_without_javascript_shows_the_fee_and_moves_nothing(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"], javascript=False)
    await page.check("input[name=method]")
    await page.fill("#amount", "12.5")
    await page.press("#amount", "Enter")
    await page.wait_for_selector("#notice p")
    assert await page.locator("#fee").inner_text() == "€0.63"
    assert await page.locator("#total").inner_text() == "€13.13"
    assert await shop.held() == 0
    await page.context.close()


async def test_an_inline_error_shows_the_fee_and_total_of_what_was_entered(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url, max_amount=5_000)
    page = await _open(browser, checkout["url"], javascript=False)
    await page.fill("#amount", "60")
    await page.check("input[name=method]")
    await page.click("button[value=confirm]")
    assert "up to €50.00" in await page.locator("#amount-error").inner_text()
    assert await page.locator("#fee").inner_text() == "€1.10"
    assert await page.locator("#total").inner_text() == "€61.10"
    # An amount the server cannot read has no fee: the dash stays.
    await page.fill("#amount", "1.005")
    await page.click("button[value=review]")
    assert "at most 2 decimal places" in await page.locator("#amount-error").inner_text()
    assert await page.locator("#fee").inner_text() == "-"
    assert await shop.held() == 0
    await page.context.close()


async def test_a_fixed_amount_shows_its_fee_once_a_method_is_chosen(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url, fixed_amount=1_000)
    page = await _open(browser, checkout["url"], javascript=False)
    await page.check("input[name=method]")
    await page.click("button[value=review]")
    assert await page.locator("#fee").inner_text() == "€0.60"
    assert await page.locator("#total").inner_text() == "€10.60"
    await page.context.close()


async def test_with_javascript_the_live_total_replaces_the_button(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"])
    assert await page.locator("#review").count() == 0
    await page.fill("#amount", "20")
    await page.check("input[name=method]")
    assert await page.locator("#total").inner_text() == "€20.70"
    # Enter in the amount confirms, as before the button existed.
    await page.press("#amount", "Enter")
    assert await page.locator("#done-total").inner_text() == "€20.70"
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert await shop.held() == 2_070
    await page.context.close()


async def test_the_live_total_is_written_as_the_server_writes_it_in_the_pages_language(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    """In German the server writes "56,56 €"; the total shown live must read the same, so the
    figure does not change its look when the customer confirms."""
    checkout = await shop.checkout(merchant_site.url, locale="de")
    page = await _open(browser, checkout["url"])
    assert await page.locator("html").get_attribute("lang") == "de"
    await page.fill("#amount", "55.50")
    await page.check("input[name=method]")
    live = await page.locator("#total").inner_text()
    await page.press("#amount", "Enter")
    assert await page.locator("#done-total").inner_text() == live
    assert live.replace("\xa0", " ") == "56,56 €"  # 55.50 + 0.50 + 1 %
    await page.context.close()
