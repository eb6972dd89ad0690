"""Adding a card on the hosted page, in a real headless Chromium against the real server: checked
and masked by the instruments service, never typed back or logged whole; shown but not offered
under the tenant's default policy, offered at once (and paid out to) when the tenant's
``added_instruments`` is ``verified``.

Mutation tried (on a copy of ``src`` run with ``PYTHONPATH``): the card number's field given
``value="{{ card.values.get('card_number', '') }}"`` with the number kept in the typed-back
values: caught (the refused number back in the page).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import httpx
from playwright.async_api import Browser, Page

from tests.checkouts.conftest import OPTIONS, Merchant, Shop
from tests.checkouts.test_page import SCREENSHOTS, _open, _query

CARD_OPTION = {
    "code": "CARD",
    "instrument_types": ["CARD"],
    "currencies": ["EUR"],
    "fee": {"fixed": 100},
    "connector": "manual",
}
GOOD = "4111 1111 1111 1111"  # Luhn-valid (VISA's test number)
BAD = "4111 1111 1111 1112"  # one digit off: Luhn refuses it
YEAR = str(datetime.now(UTC).year + 3)


async def _with_card_option(shop: Shop) -> None:
    options = {"options": [*OPTIONS["options"], CARD_OPTION]}
    assert (await shop.api.put("/v1/payment-options", json=options)).status_code == 200


async def _add_card(page: Page, number: str, month: str = "12", year: str = YEAR) -> None:
    await page.fill("#card-holder", "Ada Lovelace")
    await page.fill("#card-number", number)
    await page.fill("#card-month", month)
    await page.fill("#card-year", year)
    await page.click("button[value=add_card]")
    await page.wait_for_load_state()


async def _cards(shop: Shop) -> list[dict[str, Any]]:
    customer = shop.wallet["customer_id"]
    listed = (await shop.api.get(f"/v1/customers/{customer}/instruments")).json()["data"]
    return [item for item in listed if item["type"] == "CARD"]


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


async def test_a_card_added_on_the_page_is_masked_and_waits_for_verification(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    """The tenant's default policy: the card is stored unverified, shown as awaiting
    verification, and not offered as a payout method."""
    await _with_card_option(shop)
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"], width=360)
    await _add_card(page, GOOD)
    status = await page.locator("#card-status").inner_text()
    assert "Added VISA \u2022\u2022\u2022\u2022 1111" in status
    assert "once it is verified" in status
    content = await page.content()
    assert _digits(GOOD) not in _digits(content)
    assert "VISA \u2022\u2022\u2022\u2022 1111 awaiting verification" in (
        await page.locator("fieldset").first.inner_text()
    )
    assert await page.locator("input[name=method]").count() == 1  # only the verified IBAN
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.screenshot(path=str(SCREENSHOTS / "checkout-card-360.png"), full_page=True)
    (card,) = await _cards(shop)
    assert card["status"] == "unverified"
    assert (card["display"], card["last4"], card["holder_name"]) == (
        "VISA \u2022\u2022\u2022\u2022 1111",
        "1111",
        "Ada Lovelace",
    )
    assert card["details"] == {"brand": "VISA", "expiry_month": 12, "expiry_year": int(YEAR)}
    assert _digits(GOOD) not in _digits(str(card))
    await page.context.close()


async def test_a_refused_card_is_an_inline_error_that_stores_nothing(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    """A number Luhn refuses, and an expired card: each an inline error on its field, announced
    by an alert region; the number is never typed back, nor written to the server's log."""
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"], javascript=False)
    await _add_card(page, BAD, month="07", year=YEAR[2:])
    assert "not added" in await page.locator("#card-errors").inner_text()
    assert await page.locator("#card-errors").get_attribute("role") == "alert"
    number = page.locator("#card-number")
    assert await number.get_attribute("aria-invalid") == "true"
    assert await number.get_attribute("aria-describedby") == "card-number-error"
    assert "card number" in await page.locator("#card-number-error").inner_text()
    assert await number.input_value() == ""
    assert _digits(BAD) not in _digits(await page.content())
    # The name and the expiry (a two-digit year as on the card) are typed back.
    assert await page.locator("#card-holder").input_value() == "Ada Lovelace"
    assert await page.locator("#card-month").input_value() == "07"
    assert await page.locator("#card-year").input_value() == YEAR[2:]
    await _add_card(page, GOOD, month="1", year="2020")
    assert await page.locator("#card-year-error").inner_text() == "This card has expired."
    assert await page.locator("#card-year").get_attribute("aria-invalid") == "true"
    assert await page.locator("#card-number-error").count() == 0
    assert _digits(GOOD) not in _digits(await page.content())
    await _add_card(page, GOOD, month="13")
    assert "1 to 12" in await page.locator("#card-month-error").inner_text()
    assert await _cards(shop) == []
    log = shop.server.log_path.read_text()
    for number_typed in (BAD, GOOD):
        assert _digits(number_typed) not in _digits(log)
    await page.context.close()


async def test_with_the_verified_policy_a_card_added_on_the_page_pays_out_at_once(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    await _with_card_option(shop)
    put = await shop.api.put("/v1/checkouts/settings", json={"added_instruments": "verified"})
    assert put.status_code == 200, put.text
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"])
    await _add_card(page, GOOD)
    assert "you can choose it now" in await page.locator("#card-status").inner_text()
    assert "awaiting verification" not in await page.content()
    (card,) = await _cards(shop)
    assert card["status"] == "verified"
    assert card["verified_at"] is not None
    choice = page.locator(f"input[name=method][value='CARD:{card['id']}']")
    assert await choice.count() == 1
    await page.fill("#amount", "10")
    await choice.check()
    assert await page.locator("#fee").inner_text() == "€1.00"
    await page.click("button[value=confirm]")
    main = await page.locator("main").inner_text()
    assert "VISA \u2022\u2022\u2022\u2022 1111" in main
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert _query(page.url)["status"] == ["completed"]
    shown = (await shop.api.get(f"/v1/checkouts/{checkout['id']}")).json()
    payout = (await shop.api.get(f"/v1/payouts/{shown['payout_id']}")).json()
    assert (payout["payment_option"], payout["instrument_id"]) == ("CARD", card["id"])
    assert (payout["status"], payout["amount"], payout["fee_total"]) == ("PROCESSING", 1_000, 100)
    assert await shop.held() == 1_100
    await page.context.close()


async def test_with_the_verified_policy_an_iban_added_on_the_page_is_offered_at_once(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    put = await shop.api.put("/v1/checkouts/settings", json={"added_instruments": "verified"})
    assert put.status_code == 200, put.text
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"], javascript=False)
    await page.fill("#holder", "Ada Lovelace")
    await page.fill("#iban", "FR14 2004 1010 0505 0001 3M02 606")
    await page.click("button[value=add_iban]")
    assert "you can choose it now" in await page.locator("#add-status").inner_text()
    assert await page.locator("input[name=method]").count() == 2
    methods = await page.locator("fieldset").first.inner_text()
    assert "FR14 \u2022\u2022\u2022\u2022 2606" in methods
    await page.context.close()


async def test_an_add_form_sent_again_or_twice_at_once_adds_one_instrument(
    shop: Shop, merchant_site: Merchant
) -> None:
    """A refreshed or replayed add form, and one sent twice at once (two tabs, a retrying
    proxy), add the account once; the page says it is there already. The same card with
    another expiry is another instrument."""
    checkout = await shop.checkout(merchant_site.url)
    customer = shop.wallet["customer_id"]

    async def listed() -> list[dict[str, Any]]:
        found = await shop.api.get(f"/v1/customers/{customer}/instruments")
        data: list[dict[str, Any]] = found.json()["data"]
        return data

    before = len(await listed())
    async with httpx.AsyncClient(timeout=30) as client:
        form = await client.get(checkout["url"])
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        assert csrf is not None
        iban = {"csrf": csrf[1], "action": "add_iban", "holder_name": "Ada Lovelace"}
        first = await client.post(
            checkout["url"], data={**iban, "iban": "FR1420041010050500013M02606"}
        )
        again = await client.post(
            checkout["url"], data={**iban, "iban": "fr14 2004 1010 0505 0001 3m02 606"}
        )
        assert first.status_code == again.status_code == 200
        assert "Added" in first.text
        assert "is added already" in again.text
        assert len(await listed()) == before + 1
        card = {
            "csrf": csrf[1],
            "action": "add_card",
            "holder_name": "Ada Lovelace",
            "card_number": GOOD,
            "expiry_month": "12",
            "expiry_year": str(datetime.now(UTC).year + 3),
        }
        both = await asyncio.gather(*(client.post(checkout["url"], data=card) for _ in range(2)))
        assert [response.status_code for response in both] == [200, 200]
        assert sorted("is added already" in response.text for response in both) == [False, True]
        assert len(await listed()) == before + 2
        renewed = {**card, "expiry_year": str(datetime.now(UTC).year + 4)}
        assert "Added" in (await client.post(checkout["url"], data=renewed)).text
    cards = [item for item in await listed() if item["type"] == "CARD"]
    assert len(cards) == 2
