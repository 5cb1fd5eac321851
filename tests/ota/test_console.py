"""The operator's campaign pages: the list with progress, one campaign by stage and device, pause from the page."""

from __future__ import annotations

from collections.abc import Callable

from fastapi.testclient import TestClient

from ecohub.bootstrap import Services
from tests.ota.conftest import MODEL, Vendor


def test_operator_sees_campaigns_and_pauses_one(client: TestClient, services: Services, operator_token: str,
                                                vendor_for: Callable[[], Vendor]) -> None:
    vendor = vendor_for()
    vendor.provision(3)
    vendor.image("2.0.0")
    c = services.campaigns.create(model=MODEL, version="2.0.0", stages=[50, 100], threshold=5, max_in_flight=250,
                                  max_per_minute=1200)
    client.cookies.set("ecohub_console", operator_token, path="/console")
    page = client.get("/console/ota")
    assert page.status_code == 200
    assert f'href="/console/ota/{c["campaign_id"]}"' in page.text and "2.0.0" in page.text
    assert "halts over 5 %" in page.text and "partner, brand" in page.text
    page = client.get(f"/console/ota/{c['campaign_id']}")
    assert page.status_code == 200
    assert page.text.count("/console/fleet/devices/") == 3 and "Pending" in page.text and "Up to" in page.text
    assert "At most 250 devices update at once." in page.text and "At most 1,200 offers a minute." in page.text
    own = str(client.base_url).rstrip("/")
    r = client.post(f"/console/ota/{c['campaign_id']}/pause", headers={"Origin": own}, follow_redirects=False)
    assert r.status_code == 303
    assert services.campaigns.get(c["campaign_id"])["status"] == "paused"
    r = client.post(f"/console/ota/{c['campaign_id']}/pause", headers={"Origin": "https://evil.example"})
    assert r.status_code == 403
