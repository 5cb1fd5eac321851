"""Sharing one device in the console, in a real browser: the owner shares it, the invitee sees it under "Shared
with me", the owner ends it."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import expect

from ecohub.bootstrap import Services
from tests.console.conftest import EMAIL, PASSWORD, Home

pytestmark = pytest.mark.browser


async def _login(browser: Any, hub: Services, email: str) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{hub.runtime.http_url}/console/login")
    await page.fill("#email", email)
    await page.fill("#password", PASSWORD)
    await page.click("form:has(#email) button[type=submit]")
    await page.wait_for_url("**/console/homes**")
    return page


async def test_a_device_is_shared_seen_by_the_invitee_and_ended(hub: Services, home: Home, browser: Any) -> None:
    hub.home.accounts.signup(email="bob@example.org", password=PASSWORD, country="DE")
    plug = home.devices[0].did
    ada = await _login(browser, hub, EMAIL)
    errors: list[str] = []
    ada.on("pageerror", lambda e: errors.append(str(e)))
    await ada.goto(f"{hub.runtime.http_url}/console/devices/{plug}")
    sharing = ada.locator("#device-sharing")
    await sharing.locator("#dshare-email").fill("bob@example.org")
    await sharing.locator("#dshare-role").select_option("guest")
    await sharing.locator("#dshare-days").select_option("7")
    await sharing.locator("button.primary").click()
    await expect(ada.locator("#device-sharing [role=status]")).to_contain_text("bob@example.org")
    await expect(ada.locator("#device-sharing li[data-share]")).to_have_count(1)

    bob = await _login(browser, hub, "bob@example.org")
    shared = bob.locator("#shared-with-me")
    await expect(shared.locator(f"#card-{plug}")).to_be_visible()
    await expect(shared).to_contain_text("Plug 1")
    assert await bob.locator(f"#card-{home.devices[1].did}").count() == 0  # only the one device

    await ada.locator("#device-sharing li[data-share] button").click()
    await expect(ada.locator("#device-sharing li[data-share]")).to_have_count(0)
    await bob.reload()
    assert await bob.locator("#shared-with-me").count() == 0
    assert errors == []
