"""The firmware checks of the security audit against what OTA really writes: a real SDK simulated device reports
its firmware version over MQTT, the operator marks it vulnerable, the audit raises a critical finding (console
banner, one webhook POST), an OTA campaign updates the device and the next audit resolves the finding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from ecohub.bootstrap import Services
from ecohub.settings import OtaSettings, Settings
from ecohub.store import now_ms
from tests.helpers import eventually
from tests.ota.conftest import Vendor
from tests.ota.conftest import vendor_for as vendor_for  # the OTA vendor fixture, shared
from tests.security.conftest import Receiver

DAY = 86_400_000


@pytest.fixture
def settings(tmp_path: Path, receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """The webhook configured as an operator would (the environment); private addresses allowed for the test's
    receiver; a fast OTA tick."""
    monkeypatch.setenv("ECOHUB_SECURITY__WEBHOOK_URL", receiver.url)
    monkeypatch.setenv("ECOHUB_WEBHOOKS__ALLOW_PRIVATE", "true")
    return Settings(data_dir=tmp_path / "data", ota=OtaSettings(tick_s=0.2, offer_retry_s=1.0))


@pytest.fixture
async def vendor(hub: Services, vendor_for: Callable[[], Vendor]) -> AsyncIterator[Vendor]:
    v = vendor_for()
    yield v
    for d in v.devices:
        await d.disconnect()


async def _audit(api: httpx.AsyncClient) -> dict[str, Any]:
    r = await api.post("/api/v1/security/audit")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _findings(api: httpx.AsyncClient, **params: str) -> list[dict[str, Any]]:
    r = await api.get("/api/v1/security/findings", params=params)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def _campaign_done(api: httpx.AsyncClient, cid: int) -> dict[str, Any] | None:
    r = await api.get(f"/api/v1/ota/campaigns/{cid}")
    assert r.status_code == 200, r.text
    return r.json() if r.json()["status"] == "completed" else None  # type: ignore[no-any-return]


async def test_vulnerable_firmware_is_found_alerted_and_resolved_by_an_ota_campaign(
        api: httpx.AsyncClient, hub: Services, vendor: Vendor, receiver: Receiver, operator_token: str) -> None:
    [dev] = await vendor.fleet(1, version="1.0.0")
    await eventually(lambda: hub.twin.firmware_versions("eu", [dev.did])[dev.did] == "1.0.0")
    [other] = await vendor.fleet(1, version="1.1.0")  # same model, a version nobody marked
    await eventually(lambda: hub.twin.firmware_versions("eu", [other.did])[other.did] == "1.1.0")
    assert await _findings(api, kind="firmware.vulnerable") == []

    r = await api.post("/api/v1/security/vulnerable-firmware",
                       json={"model": vendor.model, "version": "1.0.0", "reason": "CVE-2026-0001: MQTT overflow"})
    assert r.status_code == 201, r.text
    summary = await _audit(api)
    assert summary["notified"] == 1
    [found] = await _findings(api, kind="firmware.vulnerable")
    assert (found["subject"], found["severity"], found["status"]) == (dev.did, "critical", "open")
    assert found["detail"] == {"model": vendor.model, "firmware_version": "1.0.0",
                               "reason": "CVE-2026-0001: MQTT overflow"}

    url = hub.runtime.http_url or ""
    async with httpx.AsyncClient(base_url=url, headers={"Origin": url}) as browser:
        r = await browser.post("/console/login", data={"token": operator_token}, follow_redirects=False)
        assert r.status_code == 303
        page = (await browser.get("/console/")).text
        assert "1 open critical security finding" in page and "/console/security" in page
        assert dev.did in (await browser.get("/console/security")).text
    assert [(p["event"], p["finding"]["kind"], p["finding"]["subject"]) for p in receiver.posts] == \
        [("security.finding", "firmware.vulnerable", dev.did)]
    await _audit(api)
    assert len(receiver.posts) == 1  # still open: not sent again

    # the partner ships a fixed image; an OTA campaign takes the device to it
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    assert r.status_code == 201, r.text
    body = await eventually(lambda: _campaign_done(api, r.json()["campaign_id"]), timeout=30)
    assert {d["did"]: d["state"] for d in body["devices"]} == {dev.did: "done", other.did: "done"}, body
    await eventually(lambda: hub.twin.firmware_versions("eu", [dev.did])[dev.did] == "2.0.0")
    assert dev.firmware_version == "2.0.0"
    twin = (await api.get(f"/api/v1/devices/{dev.did}/twin")).json()
    assert twin["firmware_version"] == "2.0.0"

    summary = await _audit(api)
    assert summary["resolved"] >= 1 and summary["notified"] == 0
    [after] = await _findings(api, kind="firmware.vulnerable")
    assert (after["id"], after["status"]) == (found["id"], "resolved")
    assert len(receiver.posts) == 1
    async with httpx.AsyncClient(base_url=url, headers={"Origin": url}) as browser:
        await browser.post("/console/login", data={"token": operator_token}, follow_redirects=False)
        assert "open critical security finding" not in (await browser.get("/console/")).text


async def test_never_updated_counts_the_devices_reports_and_completed_ota_updates(
        api: httpx.AsyncClient, hub: Services, vendor: Vendor) -> None:
    devs = await vendor.fleet(2, version="1.0.0")
    await eventually(lambda: set(hub.twin.firmware_versions("eu", [d.did for d in devs]).values()) == {"1.0.0"})
    svc = hub.security.service
    start = now_ms()
    svc.audit(now=start)  # the audit first sees both on 1.0.0
    svc.audit(now=start + 200 * DAY)
    assert await _findings(api, kind="firmware.never_updated") == []  # not yet past never_updated_days (365)
    svc.audit(now=start + 400 * DAY)
    found = await _findings(api, kind="firmware.never_updated", status="open")
    assert {f["subject"]: (f["severity"], f["detail"]["firmware_version"], f["detail"]["days"]) for f in found} == \
        {d.did: ("low", "1.0.0", 400) for d in devs}

    # an update to 2.0.0 and a rollback to 1.0.0, both by OTA campaigns between two audits: the audit sees 1.0.0
    # before and after, yet the devices did update — the completed campaigns say so
    vendor.image("1.0.0")
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    assert r.status_code == 201, r.text
    await eventually(lambda: _campaign_done(api, r.json()["campaign_id"]), timeout=30)
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "1.0.0", "stages": [100],
                                                      "rollback": True})
    assert r.status_code == 201, r.text
    await eventually(lambda: _campaign_done(api, r.json()["campaign_id"]), timeout=30)
    assert [d.firmware_version for d in devs] == ["1.0.0", "1.0.0"]
    summary = svc.audit(now=start + 401 * DAY)
    assert summary["resolved"] >= 2
    assert await _findings(api, kind="firmware.never_updated", status="open") == []
    assert set(hub.campaigns.last_updates("eu", [d.did for d in devs])) == {d.did for d in devs}


async def test_a_version_the_device_reports_on_reconnecting_counts_as_an_update(
        api: httpx.AsyncClient, hub: Services, vendor: Vendor) -> None:
    """Updated outside a campaign (the vendor's app, a cable): the audit sees the twin's version change."""
    creds = vendor.provision(1)[0]
    dev = vendor.device(creds, version="1.0.0")
    await dev.connect()
    await eventually(lambda: hub.twin.firmware_versions("eu", [dev.did])[dev.did] == "1.0.0")
    svc = hub.security.service
    start = now_ms()
    svc.audit(now=start)
    await dev.disconnect()
    again = vendor.device(creds, version="1.0.1")
    await again.connect()
    await eventually(lambda: hub.twin.firmware_versions("eu", [dev.did])[dev.did] == "1.0.1")
    svc.audit(now=start + DAY)
    svc.audit(now=start + 400 * DAY)
    assert await _findings(api, kind="firmware.never_updated") == []
    assert hub.campaigns.last_updates("eu", [dev.did]) == {}  # no campaign: the twin's report was the signal
