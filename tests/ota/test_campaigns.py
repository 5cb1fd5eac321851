"""Campaigns end to end: real simulated devices over MQTT download, verify, install and report."""

from __future__ import annotations

import httpx

from ecohub.bootstrap import Services
from tests.helpers import eventually
from tests.ota.conftest import Vendor


async def _status(api: httpx.AsyncClient, cid: int) -> dict:
    r = await api.get(f"/api/v1/ota/campaigns/{cid}")
    assert r.status_code == 200, r.text
    return r.json()


async def test_campaign_updates_every_device_stage_by_stage(api: httpx.AsyncClient, hub: Services,
                                                           vendor: Vendor) -> None:
    devs = await vendor.fleet(4)
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0",
                                                      "stages": [50, 100]})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    body = await eventually(lambda: _done(api, cid), timeout=30)
    assert body["counts"] == {"done": 4}
    assert [s["devices"] for s in body["stage_progress"]] == [sum(1 for d in body["devices"] if d["stage"] == 0),
                                                              sum(1 for d in body["devices"] if d["stage"] == 1)]
    assert all(d.firmware_version == "2.0.0" for d in devs)
    for d in devs:
        assert d.ota is not None and d.ota.ranges and d.ota.ranges[0].startswith("bytes=0-")
        twin = (await api.get(f"/api/v1/devices/{d.did}/twin")).json()
        assert twin["firmware_version"] == "2.0.0"


async def _done(api: httpx.AsyncClient, cid: int) -> dict | None:
    body = await _status(api, cid)
    return body if body["status"] == "completed" else None
