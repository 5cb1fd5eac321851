"""The console's pages in a real browser: languages, rule editing, consents, the phone layout, offline API docs."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import expect

from ecohub.bootstrap import Services
from tests.console.conftest import EMAIL, PASSWORD, Home
from tests.helpers import eventually

pytestmark = pytest.mark.browser


async def _signed_in(browser: Any, hub: Services, *, locale: str | None = None,
                     phone: bool = False) -> tuple[Any, list[str]]:
    """A user's page (optionally in a browser language or phone-sized) and the JavaScript errors it raises."""
    options: dict[str, Any] = {"viewport": {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}}
    if locale:
        options["locale"] = locale  # chromium sends Accept-Language from it
    context = await browser.new_context(**options)
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{hub.runtime.http_url}/console/login")
    await page.fill("#email", EMAIL)
    await page.fill("#password", PASSWORD)
    await page.click("form:has(#email) button[type=submit]")
    await page.wait_for_url("**/console/homes/**")
    return page, errors


async def test_german_and_chinese_pages_are_translated_with_lang_set(hub: Services, home: Home, browser: Any) -> None:
    page, errors = await _signed_in(browser, hub, locale="de-DE")
    assert await page.get_attribute("html", "lang") == "de"
    nav = await page.inner_text("nav[aria-label=Hauptnavigation]")
    assert "Automationen" in nav and "Datenschutz" in nav
    card = page.locator(f"#card-{home.devices[0].did}")
    assert "Schalter" in await card.inner_text()  # the plug's switch service, in German
    await expect(card.locator("[data-online]")).to_have_text("online")
    await page.goto(f"{hub.runtime.http_url}/console/privacy")
    assert "Einwilligungen" in await page.inner_text("main")

    # the switcher: Simplified Chinese, kept for the account and the next pages
    await page.select_option("#lang-switch", "zh_Hans")
    await page.wait_for_load_state("load")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-Hans")
    assert "隐私" in await page.inner_text("h1")
    await page.goto(f"{hub.runtime.http_url}/console/automations")
    assert "自动化" in await page.inner_text("h1")
    assert hub.home.accounts.profile(home.principal)["locale"] == "zh_Hans"
    assert errors == []


async def test_a_rule_is_shown_as_a_sentence_edited_and_disabled(hub: Services, home: Home, browser: Any) -> None:
    a, b = home.devices
    rule = hub.automations.create(home.principal, home.home_id, {
        "name": "A on turns B on", "triggers": [{"type": "property", "did": a.did, "prop": "2.1", "op": "==",
                                                 "value": True}],
        "actions": [{"type": "set", "did": b.did, "values": {"2.1": True}}]})
    page, errors = await _signed_in(browser, hub)
    await page.goto(f"{hub.runtime.http_url}/console/automations")
    item = page.locator(f"[data-rule='{rule['rule_id']}']")
    assert await item.locator(".sentence").inner_text() == \
        "When Plug 1 · Switch is On, set Plug 2 · Switch to On"

    await item.locator("text=Edit").click()
    await expect(page.locator("#r-name")).to_have_value("A on turns B on")
    await expect(page.locator("#r-then-prop")).to_have_value("2.1")  # the pickers show the stored rule
    await page.fill("#r-name", "A on turns B off")
    await page.select_option("#r-then-value", "false")
    await page.click("text=Save rule")
    assert "Saved" in await page.inner_text("[role=status]")
    stored = hub.automations.get(home.principal, rule["rule_id"])
    assert stored["name"] == "A on turns B off" and stored["actions"][0]["values"] == {"2.1": False}
    item = page.locator(f"[data-rule='{rule['rule_id']}']")
    assert await item.locator(".sentence").inner_text() == \
        "When Plug 1 · Switch is On, set Plug 2 · Switch to Off"

    await item.locator("button:has-text('Disable')").click()
    await expect(page.locator(f"[data-rule='{rule['rule_id']}'] .tag")).to_have_text("disabled")
    assert hub.automations.get(home.principal, rule["rule_id"])["enabled"] is False
    b.values[(2, 1)] = True
    a.report({(2, 1): True})  # a disabled rule does not act
    await page.wait_for_timeout(1500)
    assert b.values[(2, 1)] is True

    page.on("dialog", lambda d: d.accept())
    await page.locator(f"[data-rule='{rule['rule_id']}'] button:has-text('Delete')").click()
    await expect(page.locator(f"[data-rule='{rule['rule_id']}']")).to_have_count(0)
    assert hub.automations.of_home(home.principal, home.home_id) == []
    assert errors == []


async def test_a_consent_is_given_then_withdrawn_with_its_effect_explained(hub: Services, home: Home,
                                                                           browser: Any) -> None:
    page, errors = await _signed_in(browser, hub)
    await page.goto(f"{hub.runtime.http_url}/console/privacy")
    purpose = page.locator("[data-purpose=device_diagnostics_to_maker]")
    assert "never asked" in await purpose.locator("[data-state]").inner_text()
    assert "very next read leaves them out" in await purpose.inner_text()  # the effect, before one decides
    await purpose.locator("button:has-text('Give consent')").click()
    await expect(page.locator("[role=status]")).to_contain_text("You gave consent")
    cell = home.principal.cell or ""
    assert hub.privacy.consents.current(cell, home.principal.subject)["device_diagnostics_to_maker"]["given"] is True

    await page.locator("[data-purpose=device_diagnostics_to_maker] button:has-text('Withdraw consent')").click()
    await expect(page.locator("[role=status]")).to_contain_text("You withdrew consent")
    assert hub.privacy.consents.current(cell, home.principal.subject)["device_diagnostics_to_maker"]["given"] is False
    assert "withdrawn on" in await page.locator("[data-purpose=device_diagnostics_to_maker] [data-state]").inner_text()
    assert errors == []


async def test_the_phone_layout_keeps_the_header_to_one_line(hub: Services, home: Home, operator_token: str,
                                                             browser: Any) -> None:
    page, errors = await _signed_in(browser, hub, phone=True)
    header = await page.locator("header.top").bounding_box()
    assert header is not None and header["height"] <= 64, header  # one line, not ~270 px
    nav = page.locator("nav[aria-label=Main]")
    await expect(nav).to_be_hidden()
    await page.click("#menu-toggle")
    await expect(nav).to_be_visible()
    await nav.locator("text=Automations").click()
    await page.wait_for_url("**/console/automations")

    # an operator's table on a phone: each row a card whose cells name their column
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    op = await context.new_page()
    await op.goto(f"{hub.runtime.http_url}/console/login")
    await op.fill("#token", operator_token)
    await op.click("text=Sign in with token")
    await op.goto(f"{hub.runtime.http_url}/console/fleet")
    cell = op.locator("table.responsive tbody tr").first.locator("td[data-label=Model]")
    await expect(cell).to_be_visible()
    box = await cell.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390  # nothing cut off to the right
    assert errors == []


async def test_api_docs_work_with_no_outside_requests(hub: Services, browser: Any) -> None:
    page = await browser.new_page()
    own = urlsplit(hub.runtime.http_url).netloc
    outside: list[str] = []

    async def only_the_hub(route: Any) -> None:
        if urlsplit(route.request.url).netloc != own:
            outside.append(route.request.url)
            await route.abort()  # no network: anything from a CDN fails
        else:
            await route.continue_()

    await page.route("**/*", only_the_hub)
    await page.goto(f"{hub.runtime.http_url}/api/v1/docs")
    await expect(page.locator(".swagger-ui .opblock").first).to_be_visible(timeout=15000)
    assert await page.locator(".swagger-ui .opblock").count() > 3  # the operations render from the spec
    assert outside == []


async def test_unknown_pages_the_manifest_and_the_service_worker(hub: Services, home: Home, browser: Any) -> None:
    page, errors = await _signed_in(browser, hub)
    response = await page.goto(f"{hub.runtime.http_url}/console/no-such-page")
    assert response is not None and response.status == 404
    assert await page.locator("nav[aria-label=Main] a").count() >= 3  # the navigation stays
    manifest = await (await page.request.get(f"{hub.runtime.http_url}/console/manifest.webmanifest")).json()
    assert manifest["start_url"] == "/console/" and {i["sizes"] for i in manifest["icons"]} >= {"192x192", "512x512"}
    for icon in manifest["icons"]:
        assert (await page.request.get(f"{hub.runtime.http_url}{icon['src']}")).ok
    sw = await page.request.get(f"{hub.runtime.http_url}/console/sw.js")
    assert sw.ok and "caches.open" in await sw.text()
    assert (await page.request.get(f"{hub.runtime.http_url}/favicon.ico")).ok
    # the home page: favourites first, search narrows the cards
    await page.goto(f"{hub.runtime.http_url}/console/homes/{home.home_id}")
    first = home.devices[1].did
    await page.locator(f"#card-{first} button.fav").click()
    await page.wait_for_url(re.compile(r".*/console/homes/.*"))
    await expect(page.locator(f"section:has(#room-favourites) #card-{first}")).to_have_count(1)
    # favourites are the account's: another browser (its own cookies) shows the same one first, in German too
    other, other_errors = await _signed_in(browser, hub, locale="de-DE", phone=True)
    await expect(other.locator(f"section:has(#room-favourites) #card-{first}")).to_have_count(1)
    await expect(other.locator("#room-favourites")).to_contain_text("Favoriten")
    assert other_errors == []
    await page.fill("#device-search", "Plug 1")
    await expect(page.locator(f"#card-{home.devices[0].did}")).to_be_visible()
    await expect(page.locator(f"#card-{first}")).to_be_hidden()
    assert errors == []


async def test_a_room_s_switches_go_on_and_off_together(hub: Services, home: Home, browser: Any) -> None:
    page, errors = await _signed_in(browser, hub)
    assert all(d.values[(2, 1)] is False for d in home.devices)
    await page.click("button[data-group=switch-on]")
    await expect(page.locator("[role=status]")).to_have_text("2 of 2 devices confirmed.")
    assert all(d.values[(2, 1)] is True for d in home.devices)  # both plugs answered the one tap
    await page.click("button[data-group=switch-off]")
    await expect(page.locator("[role=status]")).to_have_text("2 of 2 devices confirmed.")
    assert all(d.values[(2, 1)] is False for d in home.devices)
    assert errors == []


async def test_the_notification_centre_tells_when_a_device_goes_offline(hub: Services, home: Home,
                                                                        browser: Any) -> None:
    page, errors = await _signed_in(browser, hub)
    await expect(page.locator("body")).to_have_class(re.compile(r"\bis-live\b"), timeout=5000)
    await expect(page.locator("#notif-count")).to_be_hidden()
    await home.devices[1].disconnect()  # plug 2 goes offline
    await expect(page.locator("#notif-count")).to_have_text("1", timeout=10000)
    await page.click("#notif-toggle")
    await expect(page.locator("#notif-list li").first).to_contain_text("Plug 2 went offline")
    await expect(page.locator("#notif-count")).to_be_hidden()  # read once the panel is open
    await page.goto(f"{hub.runtime.http_url}/console/privacy")  # kept while the tab browses the console
    await page.click("#notif-toggle")
    await expect(page.locator("#notif-list li").first).to_contain_text("Plug 2 went offline")
    assert errors == []


async def test_a_home_is_shared_with_a_guest_for_a_week_then_access_ends(hub: Services, home: Home,
                                                                         browser: Any) -> None:
    guest = hub.home.accounts.signup(email="bo@example.org", password="another horse battery", country="AT")
    page, errors = await _signed_in(browser, hub)
    await page.click("text=Sharing")
    await page.fill("#share-email", "bo@example.org")
    await page.select_option("#share-role", "guest")
    await page.select_option("#share-days", "7")
    await page.click("button:has-text('Invite')")
    await expect(page.locator("[role=status]")).to_have_text("bo@example.org can now use this home as Guest.")
    row = page.locator(f"[data-user='{guest['user_id']}']")
    await expect(row).to_contain_text("Guest")
    await expect(row).to_contain_text("until")
    shared = {m["user_id"]: m for m in hub.home.homes.members(home.principal, home.home_id)}
    assert shared[guest["user_id"]]["role"] == "guest" and shared[guest["user_id"]]["expires_at"] is not None

    await row.locator("button:has-text('End access')").click()
    await expect(page.locator("[role=status]")).to_have_text("Access ended.")
    assert [m["role"] for m in hub.home.homes.members(home.principal, home.home_id)] == ["owner"]
    assert errors == []


async def test_a_scene_is_saved_from_how_things_are_and_run_in_one_tap(hub: Services, home: Home,
                                                                       browser: Any) -> None:
    a, b = home.devices
    a.report({(2, 1): True})  # plug 1 on, plug 2 off: the state the scene keeps
    await eventually(lambda: hub.twin.get("eu", a.did)["properties"]["2.1"]["value"] is True)
    page, errors = await _signed_in(browser, hub)
    await page.click("text=New scene from how things are now")
    await page.fill("#scene-name", "Evening")
    await page.check(f"input[name=dids][value='{a.did}']")
    await page.check(f"input[name=dids][value='{b.did}']")
    await page.click("text=Save scene")
    await expect(page.locator("[role=status]")).to_have_text("Saved the scene “Evening”.")
    (scene,) = hub.automations.scenes.of_home(home.principal, home.home_id)
    assert {x["did"]: x["values"]["2.1"] for x in scene["actions"]} == {a.did: True, b.did: False}

    a.report({(2, 1): False})
    b.report({(2, 1): True})  # things changed since
    await eventually(lambda: hub.twin.get("eu", b.did)["properties"]["2.1"]["value"] is True)
    await page.goto(f"{hub.runtime.http_url}/console/homes/{home.home_id}")
    await page.click("button.scene-run:has-text('Evening')")
    await expect(page.locator("[role=status]")).to_have_text("“Evening”: 2 of 2 devices confirmed.")
    assert a.values[(2, 1)] is True and b.values[(2, 1)] is False  # one tap set both back
    assert errors == []


async def test_the_notification_centre_lists_stored_notifications_and_takes_new_ones_live(
        hub: Services, home: Home, browser: Any) -> None:
    hub.notifications.notify_home(home.principal.cell or "", home.home_id, kind="automation", title="Leak",
                                  body="Water under the sink", severity="critical")
    page, errors = await _signed_in(browser, hub)
    await expect(page.locator("body")).to_have_class(re.compile(r"\bis-live\b"), timeout=5000)
    await expect(page.locator("#notif-count")).to_have_text("1", timeout=5000)  # stored, unread
    await page.click("#notif-toggle")
    await expect(page.locator("#notif-list li.stored").first).to_contain_text("Water under the sink")
    await expect(page.locator("#notif-count")).to_be_hidden()  # opening the centre marks them read in the hub
    await eventually(lambda: hub.notifications.unread_count(home.principal) == 0 or None)
    await page.click("#notif-toggle")  # closed again: a new one arrives live and counts as unread
    hub.notifications.notify_home(home.principal.cell or "", home.home_id, kind="automation", title="Door",
                                  body="The front door opened")
    await expect(page.locator("#notif-count")).to_have_text("1", timeout=10000)
    await expect(page.locator("#notif-list li.stored").first).to_contain_text("The front door opened")
    assert errors == []
