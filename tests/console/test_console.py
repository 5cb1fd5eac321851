"""The console in a real browser against a real hub: sign in, fleet, control, live values, charts, automations."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import expect

from ecohub.bootstrap import Services
from tests.console.conftest import EMAIL, PASSWORD, Home
from tests.helpers import eventually

pytestmark = pytest.mark.browser


async def _user_page(browser: Any, hub: Services) -> Any:
    page = await browser.new_page(viewport={"width": 390, "height": 844})  # a phone-sized viewport
    await page.goto(f"{hub.runtime.http_url}/console/login")
    await page.fill("#email", EMAIL)
    await page.fill("#password", PASSWORD)
    await page.click("form:has(#email) button[type=submit]")
    await page.wait_for_url("**/console/homes/**")
    return page


async def test_operator_signs_in_with_a_token_and_sees_the_fleet_live(hub: Services, home: Home, operator_token: str,
                                                                      browser: Any) -> None:
    page = await browser.new_page()
    await page.goto(f"{hub.runtime.http_url}/console/fleet")
    assert "/console/login" in page.url  # no session: the login page, not data
    await page.fill("#token", "eht_wrong")
    await page.click("text=Sign in with token")
    assert "unknown token" in await page.inner_text("[role=alert]")
    await page.fill("#token", operator_token)
    await page.click("text=Sign in with token")
    await page.wait_for_url("**/console/fleet")
    assert "2 of 2 devices online" in await page.inner_text("#fleet-summary")
    for dev in home.devices:
        assert await page.locator(f"a:has-text('{dev.did}')").count() == 1
    # locator waits, not page-side eval: the console's CSP forbids evaluating strings as script
    await expect(page.locator("#rate")).to_have_text(re.compile(r"^[0-9.]+$"), timeout=5000)
    cookies = await page.context.cookies()
    assert next(c for c in cookies if c["name"] == "ecohub_console")["httpOnly"] is True


async def test_user_toggles_a_plug_sees_live_values_and_a_chart(hub: Services, home: Home, browser: Any) -> None:
    page = await _user_page(browser, hub)
    plug = home.devices[0]
    switch = page.locator(f"#card-{plug.did} [data-key='2.1'] [role=switch]")
    assert await switch.get_attribute("aria-checked") == "false"
    await switch.focus()
    await page.keyboard.press("Enter")  # keyboard works: the switch is a real button
    await eventually(lambda: plug.values[(2, 1)] is True)  # the simulated device changed…
    await eventually(lambda: hub.twin.get("eu", plug.did)["properties"]["2.1"]["value"] is True)  # …and its twin
    await page.wait_for_selector(f"#card-{plug.did} [data-key='2.1'] [role=switch][aria-checked=true]")

    # a value the device reports on its own arrives in the open page over server-sent events
    await expect(page.locator("body")).to_have_class(re.compile(r"\bis-live\b"), timeout=5000)
    plug.report({(2, 1): False})
    await page.wait_for_selector(f"#card-{plug.did} [data-key='2.1'] [role=switch][aria-checked=false]",
                                 timeout=5000)

    await page.goto(f"{hub.runtime.http_url}/console/devices/{plug.did}")
    await page.select_option("#tm-key", "2.1")
    await page.wait_for_selector("#telemetry-chart canvas", timeout=5000)
    samples = await page.get_attribute("#telemetry-chart", "data-samples")
    assert samples is not None and int(samples) >= 3  # off, on, off


async def test_user_creates_an_automation_and_sees_it_fire(hub: Services, home: Home, browser: Any) -> None:
    a, b = home.devices
    page = await _user_page(browser, hub)
    await page.goto(f"{hub.runtime.http_url}/console/automations")
    await page.fill("#r-name", "A on turns B on")
    await page.select_option("#r-when-did", a.did)
    await page.select_option("#r-when-prop", "2.1")  # pickers drawn from the plug's spec
    await page.select_option("#r-when-op", "==")
    await page.select_option("#r-when-value", "true")
    await page.select_option("#r-then-did", b.did)
    await page.select_option("#r-then-prop", "2.1")
    await page.select_option("#r-then-value", "true")
    await page.click("text=Save rule")
    assert "Saved" in await page.inner_text("[role=status]")
    assert b.values[(2, 1)] is False
    a.report({(2, 1): True})  # someone presses plug A's button
    await eventually(lambda: b.values[(2, 1)] is True, timeout=10)

    async def run_listed() -> bool:  # runs are recorded after the actions answered: ask until one is listed
        await page.click("text=Show runs")
        await page.wait_for_timeout(300)
        return await page.locator(".runs li").count() > 0

    await eventually(run_listed, timeout=10)


async def test_user_requests_an_export(hub: Services, home: Home, browser: Any) -> None:
    page = await _user_page(browser, hub)
    await page.goto(f"{hub.runtime.http_url}/console/privacy")
    assert await page.locator("#export").count() == 1, await page.content()
    await page.fill("#export-password", PASSWORD)
    async with page.expect_download() as download:
        await page.click("#export")
    assert (await download.value).suggested_filename.endswith(".zip")
