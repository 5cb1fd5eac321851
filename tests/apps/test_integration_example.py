"""The reference integration (examples/integration/client.py) against a real hub, with a real browser clicking
through sign-in and the consent screen: authorize, list granted devices, switch one, get the change by signed
webhook and by the stream."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from ecohub.bootstrap import Services
from ecohub.hub import free_port
from ecohub.settings import Settings
from tests.console.conftest import EMAIL, PASSWORD, Home, browser, home  # noqa: F401 - fixtures
from tests.helpers import migrated

pytestmark = pytest.mark.browser
CLIENT = Path(__file__).resolve().parents[2] / "examples" / "integration" / "client.py"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The example's webhook server is on this machine: private addresses allowed on this hub."""
    return Settings(data_dir=migrated(tmp_path), webhooks={"allow_private": True})


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("integration_client", CLIENT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_reference_integration_through_the_consent_screen(hub: Services, home: Home,  # noqa: F811
                                                               browser: Any) -> None:  # noqa: F811
    port = free_port()
    app = hub.apps.registry.create(name="Reference integration", redirect_uris=[f"http://127.0.0.1:{port}/callback"],
                                   scopes=["devices:read", "devices:control"])
    page = await browser.new_page()
    granted = sorted(d.did for d in home.devices)[0]

    async def consent(url: str) -> None:
        await page.goto(url)  # → console sign-in → consent screen
        await page.fill("#email", EMAIL)
        await page.fill("#password", PASSWORD)
        await page.click("form:has(#email) button[type=submit]")
        await expect(page.locator("#app-name")).to_have_text("Reference integration")
        await expect(page.locator("[data-scope='devices:control']")).to_be_visible()
        for box in await page.locator("input[name=did]").all():  # grant exactly one of the two plugs
            if await box.get_attribute("value") != granted:
                await box.uncheck()
        await page.click("#allow")
        await page.wait_for_url(f"http://127.0.0.1:{port}/callback**")

    result = await _example().run(hub.runtime.http_url, app["client_id"], app["client_secret"], port, consent)
    assert result["devices"] == [granted]
    assert result["switched"]["status"] == "replied"
    assert result["webhook_verified"] is True
    assert result["webhook"]["data"]["properties"]["2.1"] is (not result["was_on"])
    assert result["stream"]["values"]["2.1"] is (not result["was_on"])
    # the user sees the app on their Apps page and can withdraw it there
    await page.goto(f"{hub.runtime.http_url}/console/apps")
    await expect(page.locator(".card h2")).to_have_text("Reference integration")
    await page.click("text=Withdraw access")
    await expect(page.locator("[role=status]")).to_contain_text("Access withdrawn")
