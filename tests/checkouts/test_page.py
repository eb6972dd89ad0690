"""The hosted withdrawal page in a real headless Chromium against the real server.

Mutation tried (on a copy of ``src`` run with ``PYTHONPATH``): the page's payout made without
its session reference (``reference=None``) and the step keys of each submit made unique: caught
by ``test_a_replayed_form_post_moves_money_once`` (two payouts).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pyotp
from playwright.async_api import Browser, Page

from tests.checkouts.conftest import Merchant, Shop

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


async def _open(browser: Browser, url: str, *, javascript: bool = True, width: int = 1024) -> Page:
    context = await browser.new_context(
        java_script_enabled=javascript, viewport={"width": width, "height": 800}
    )
    page = await context.new_page()
    response = await page.goto(url)
    assert response is not None
    return page


async def test_the_customer_withdraws_and_lands_back_at_the_shop(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url, max_amount=5_000)
    page = await _open(browser, checkout["url"])
    assert await page.locator("#limit").inner_text() == "€50.00"
    await page.fill("#amount", "12.5")
    await page.check("input[name=method]")
    # The fee (0.50 + 1 % of 12.50, rounded half up: 0.63) and the total, live.
    assert await page.locator("#fee").inner_text() == "€0.63"
    assert await page.locator("#total").inner_text() == "€13.13"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / "checkout-desktop.png"), full_page=True)
    await page.click("button[value=confirm]")
    # The outcome first, then back to the shop by itself.
    assert "€12.50 is on its way" in await page.locator("main").inner_text()
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    back = _query(page.url)
    assert back["status"] == ["completed"]
    assert back["checkout_id"] == [checkout["id"]]
    shown = (await shop.api.get(f"/v1/checkouts/{checkout['id']}")).json()
    assert shown["status"] == "completed"
    payout = (await shop.api.get(f"/v1/payouts/{shown['payout_id']}")).json()
    assert (payout["status"], payout["amount"], payout["fee_total"]) == ("PROCESSING", 1_250, 63)
    assert payout["reference"] == f"checkout-{checkout['id']}"
    assert await shop.held() == 1_313
    # The session's events, in the outbox with the payout's id.
    for kind in ("checkout.created", "checkout.completed"):
        found = (await shop.api.get("/v1/events", params={"type": kind})).json()["data"]
        assert [event["data"]["id"] for event in found] == [checkout["id"]], kind
    completed = (await shop.api.get("/v1/events", params={"type": "checkout.completed"})).json()
    assert completed["data"][0]["data"]["payout_id"] == shown["payout_id"]
    # The link is single-use: opened again it says so, and moves nothing.
    again = await _open(browser, checkout["url"])
    assert "confirmed already" in await again.locator("main").inner_text()
    await page.context.close()
    await again.context.close()


async def test_the_whole_flow_without_javascript(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"], javascript=False)
    await page.fill("#amount", "20")
    await page.check("input[name=method]")
    await page.click("button[value=confirm]")
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert _query(page.url)["status"] == ["completed"]
    assert await shop.held() == 2_000 + 70
    await page.context.close()


async def test_over_the_limit_is_an_inline_error_and_moves_nothing(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url, max_amount=5_000)
    page = await _open(browser, checkout["url"], width=360)
    # At 360 px the page needs no horizontal scrolling.
    assert await page.evaluate("document.documentElement.scrollWidth") <= 360
    await page.fill("#amount", "60")
    await page.check("input[name=method]")
    await page.click("button[value=confirm]")
    error = page.locator("#amount-error")
    assert "up to €50.00" in await error.inner_text()
    assert await page.locator("#amount").get_attribute("aria-invalid") == "true"
    await page.screenshot(path=str(SCREENSHOTS / "checkout-error-360.png"), full_page=True)
    # Too many decimals is refused, never rounded.
    await page.fill("#amount", "1.005")
    await page.click("button[value=confirm]")
    assert "at most 2 decimal places" in await page.locator("#amount-error").inner_text()
    assert await shop.held() == 0
    await page.context.close()


async def test_a_fixed_amount_session_locks_the_amount(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url, fixed_amount=1_000)
    page = await _open(browser, checkout["url"], width=360)
    assert await page.locator("#amount").count() == 0
    assert await page.locator("#fixed-amount").inner_text() == "€10.00"
    await page.screenshot(path=str(SCREENSHOTS / "checkout-fixed-360.png"), full_page=True)
    await page.check("input[name=method]")
    await page.click("button[value=confirm]")
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert await shop.held() == 1_000 + 60
    await page.context.close()


async def test_cancel_expired_and_wrong_links(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"])
    await page.click("button[value=cancel]")
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert _query(page.url)["status"] == ["cancelled"]
    # Expired by the merchant: the page says so.
    other = await shop.checkout(merchant_site.url)
    expired = await shop.api.post(f"/v1/checkouts/{other['id']}/expire")
    assert expired.json()["status"] == "expired"
    async with httpx.AsyncClient(timeout=30) as client:
        closed = await client.get(other["url"])
        assert closed.status_code == 410
        assert "expired" in closed.text
        # A wrong secret, and an id that names nothing, answer the very same page.
        wrong = await client.get(other["url"][:-4] + "AAAA")
        nothing = await client.get(
            f"{shop.server.url}/checkout/00000000-0000-4000-8000-000000000000/cs_x"
        )
    assert wrong.status_code == nothing.status_code == 404
    assert wrong.text == nothing.text
    assert other["id"] not in wrong.text
    for name, value in closed.headers.items():
        if name.lower() == "content-security-policy":
            assert "default-src 'none'" in value
            assert "frame-ancestors 'none'" in value
    assert closed.headers["referrer-policy"] == "no-referrer"
    await page.context.close()


async def test_a_replayed_form_post_moves_money_once(shop: Shop, merchant_site: Merchant) -> None:
    checkout = await shop.checkout(merchant_site.url)
    async with httpx.AsyncClient(timeout=30) as client:
        form = await client.get(checkout["url"])
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        method = re.search(r'name="method" value="([^"]+)"', form.text)
        assert csrf is not None
        assert method is not None
        body = {"csrf": csrf[1], "amount": "15", "method": method[1], "action": "confirm"}
        first = await client.post(checkout["url"], data=body)
        second = await client.post(checkout["url"], data=body)
        forged = await client.post(checkout["url"], data={**body, "csrf": "0" * 64})
    assert first.status_code == 200, first.text
    assert "Withdrawal confirmed" in first.text
    assert "status=completed" in first.text
    assert second.status_code == 410  # used: it says so and moves nothing
    assert forged.status_code in (400, 410)
    payouts = (await shop.api.get("/v1/payouts", params={"wallet_id": shop.wallet["id"]})).json()
    assert len(payouts["data"]) == 1
    assert await shop.held() == 1_500 + 65


async def test_sca_on_the_page(shop: Shop, browser: Browser, merchant_site: Merchant) -> None:
    """The tenant's policy asks for SCA: the page asks for the authenticator's code, a wrong
    one is an error that moves nothing, the right one (made from the enrolled secret) goes
    through."""
    customer = shop.wallet["customer_id"]
    policy = {"mode": "EMBEDDED", "rules": [{"min_amount": 0}]}
    assert (await shop.api.put("/v1/sca/policy", json=policy)).status_code == 200
    enrolled = await shop.api.post(f"/v1/customers/{customer}/sca/totp")
    totp = pyotp.TOTP(enrolled.json()["secret"])
    activated = await shop.api.post(
        f"/v1/customers/{customer}/sca/totp/activate", json={"code": totp.now()}
    )
    assert activated.status_code == 200, activated.text
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"])
    await page.fill("#amount", "10")
    await page.check("input[name=method]")
    await page.click("button[value=confirm]")
    await page.wait_for_load_state()
    assert await page.locator("#code").count() == 1, await page.content()
    assert "authenticator" in await page.locator("#errors").inner_text()
    assert await shop.held() == 0
    wrong = f"{(int(totp.at(time.time() + 30)) + 1) % 1_000_000:06d}"
    await page.fill("#code", wrong)
    await page.click("button[value=confirm]")
    await page.wait_for_selector("#code")
    assert "wrong" in (await page.locator("#errors").inner_text()).lower()
    assert await shop.held() == 0
    await page.fill("#code", totp.at(time.time() + 30))
    await page.click("button[value=confirm]")
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert _query(page.url)["status"] == ["completed"]
    assert await shop.held() == 1_000 + 60
    await page.context.close()


async def test_adding_an_iban_on_the_page(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    """Added masked at once, unverified (shown, not offered) until the merchant verifies it;
    a wrong IBAN is an inline error that adds nothing."""
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"])
    await page.fill("#holder", "Ada Lovelace")
    await page.fill("#iban", "FR14 2004 1010 0505 0001 3M02 606")
    await page.click("button[value=add_iban]")
    status = await page.locator("#add-status").inner_text()
    assert "Added" in status
    assert "2606" in status
    content = await page.content()
    assert "0505 0001" not in content
    assert "awaiting verification" in content
    assert await page.locator("input[name=method]").count() == 1  # only the verified one
    customer = shop.wallet["customer_id"]
    listed = (await shop.api.get(f"/v1/customers/{customer}/instruments")).json()["data"]
    assert sorted(item["status"] for item in listed) == ["unverified", "verified"]
    await page.fill("#holder", "Ada Lovelace")
    await page.fill("#iban", "FR14 0000 0000 0000")
    await page.click("button[value=add_iban]")
    assert await page.locator("#iban-error").count() == 1
    assert await page.locator("#iban").get_attribute("aria-invalid") == "true"
    listed = (await shop.api.get(f"/v1/customers/{customer}/instruments")).json()["data"]
    assert len(listed) == 2
    await page.context.close()


async def test_a_double_click_that_reaches_the_server_twice_moves_money_once(
    shop: Shop, merchant_site: Merchant
) -> None:
    """Chromium itself sends a double-clicked form once (measured: one post); a client that
    sends it twice at once (two tabs, a retrying proxy) meets the session's guard."""
    checkout = await shop.checkout(merchant_site.url)
    async with httpx.AsyncClient(timeout=30) as client:
        form = await client.get(checkout["url"])
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', form.text)
        method = re.search(r'name="method" value="([^"]+)"', form.text)
        assert csrf is not None
        assert method is not None
        body = {"csrf": csrf[1], "amount": "30", "method": method[1], "action": "confirm"}
        answers = await asyncio.gather(*(client.post(checkout["url"], data=body) for _ in range(2)))
    assert any("Withdrawal confirmed" in answer.text for answer in answers), [
        answer.text for answer in answers
    ]
    payouts = (await shop.api.get("/v1/payouts", params={"wallet_id": shop.wallet["id"]})).json()
    assert len(payouts["data"]) == 1
    assert await shop.held() == 3_000 + 80


async def test_the_tenant_names_who_may_frame_the_page(shop: Shop, merchant_site: Merchant) -> None:
    checkout = await shop.checkout(merchant_site.url, experience="webview")
    async with httpx.AsyncClient(timeout=30) as client:
        before = await client.get(checkout["url"])
        assert "frame-ancestors 'none'" in before.headers["content-security-policy"]
        settings = {"frame_ancestors": ["https://shop.example", "https://app.example:8443"]}
        put = await shop.api.put("/v1/checkouts/settings", json=settings)
        assert put.status_code == 200, put.text
        shown = (await shop.api.get("/v1/checkouts/settings")).json()
        assert shown == {**settings, "added_instruments": "unverified"}
        after = await client.get(checkout["url"])
    policy = after.headers["content-security-policy"]
    assert "frame-ancestors https://shop.example https://app.example:8443;" in policy
    for bad in (["http://shop.example"], ["https://shop.example/path"], ["*"], ["'self'"]):
        refused = await shop.api.put("/v1/checkouts/settings", json={"frame_ancestors": bad})
        assert refused.status_code == 422, (bad, refused.text)


async def test_the_whole_flow_by_keyboard_alone(
    shop: Shop, browser: Browser, merchant_site: Merchant
) -> None:
    checkout = await shop.checkout(merchant_site.url)
    page = await _open(browser, checkout["url"])
    await page.keyboard.press("Tab")  # the first field is the amount
    assert await page.evaluate("document.activeElement.id") == "amount"
    await page.keyboard.type("5")
    await page.keyboard.press("Tab")  # the payout method
    await page.keyboard.press("Space")
    assert await page.locator("input[name=method]").is_checked()
    await page.keyboard.press("Tab")  # Confirm
    assert await page.evaluate("document.activeElement.value") == "confirm"
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(re.escape(merchant_site.url) + r"\?"))
    assert _query(page.url)["status"] == ["completed"]
    assert await shop.held() == 500 + 55
    await page.context.close()
