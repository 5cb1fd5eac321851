"""Campaigns end to end: real simulated devices over MQTT download, verify, install and report."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx

from ecohub.bootstrap import Services
from ecohub.connect.events import OnlineChanged
from ecohub.ota.relay import SUBJECT, encode_event
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
        assert d.ota.ranges and d.ota.ranges[0].startswith("bytes=0-")
        twin = (await api.get(f"/api/v1/devices/{d.did}/twin")).json()
        assert twin["firmware_version"] == "2.0.0"


async def _done(api: httpx.AsyncClient, cid: int) -> dict | None:
    body = await _status(api, cid)
    return body if body["status"] == "completed" else None


async def test_failure_rate_over_threshold_halts_and_nothing_more_is_offered(api: httpx.AsyncClient, hub: Services,
                                                                            vendor: Vendor) -> None:
    bad = await vendor.fleet(3, fault="ota-install-fails")
    good = await vendor.fleet(3)
    late_creds = vendor.provision(1)[0]  # a target that is offline when the campaign starts
    vendor.image("2.0.0")
    # every device in the first stage: three of six fail, 50% > 20%
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100],
                                                      "threshold": 20})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]
    body = await eventually(lambda: _with_status(api, cid, "halted"), timeout=30)
    assert "over the threshold 20%" in body["reason"]
    failed = [d for d in body["devices"] if d["state"] == "failed"]
    assert failed and all(d["code"] == -4024 for d in failed)
    assert {d["did"] for d in failed} <= {d.did for d in bad}
    assert all(d.firmware_version == "1.0.0" for d in bad)
    # halted: a device that comes online now gets no offer, and neither does anyone on the next ticks
    late = [vendor.device(late_creds)]
    await late[0].connect()
    offered = {d.did: len([m for m in d.received if m.method == "ota_update"]) for d in [*bad, *good, *late]}
    engine = hub.ota_engine
    assert engine is not None
    await engine.tick_now()
    sent = engine.offers_sent
    for _ in range(3):  # three more ticks of the engine
        await engine.tick_now()
    assert engine.offers_sent == sent
    assert {d.did: len([m for m in d.received if m.method == "ota_update"]) for d in [*bad, *good, *late]} == offered
    assert offered[late[0].did] == 0
    # the operator resumes it: offers go out again (to those not offered yet, the late device among them)
    r = await api.post(f"/api/v1/ota/campaigns/{cid}/resume")
    assert r.status_code == 200, r.text
    await eventually(lambda: late[0].firmware_version == "2.0.0", timeout=30)


async def _with_status(api: httpx.AsyncClient, cid: int, status: str) -> dict | None:
    body = await _status(api, cid)
    return body if body["status"] == status else None


async def test_rollback_returns_devices_to_the_previous_version(api: httpx.AsyncClient, hub: Services,
                                                                vendor: Vendor) -> None:
    devs = await vendor.fleet(2)
    vendor.image("1.0.0")
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    assert r.status_code == 201, r.text
    await eventually(lambda: _done(api, r.json()["campaign_id"]), timeout=30)
    assert [d.firmware_version for d in devs] == ["2.0.0", "2.0.0"]
    # back to 1.0.0: refused as a plain campaign, accepted as a rollback
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "1.0.0"})
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_not_newer", r.text
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "1.0.0", "stages": [100],
                                                      "rollback": True})
    assert r.status_code == 201, r.text
    await eventually(lambda: _done(api, r.json()["campaign_id"]), timeout=30)
    assert [d.firmware_version for d in devs] == ["1.0.0", "1.0.0"]
    twin = (await api.get(f"/api/v1/devices/{devs[0].did}/twin")).json()
    assert twin["firmware_version"] == "1.0.0"


async def test_offline_device_gets_its_offer_when_it_comes_back(api: httpx.AsyncClient, hub: Services,
                                                                vendor: Vendor) -> None:
    online = await vendor.fleet(1)
    creds = vendor.provision(1)[0]  # provisioned, never connected yet: offline when its stage starts
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    cid = r.json()["campaign_id"]
    await eventually(lambda: online[0].firmware_version == "2.0.0", timeout=30)
    body = await _status(api, cid)
    assert body["status"] == "running"  # waiting for the offline device
    assert {d["did"]: d["state"] for d in body["devices"]}[creds["did"]] == "pending"
    late = vendor.device(creds)
    await late.connect()
    await eventually(lambda: _done(api, cid), timeout=30)
    assert late.firmware_version == "2.0.0"


async def test_device_that_reboots_into_its_old_version_counts_as_failed(api: httpx.AsyncClient, hub: Services,
                                                                         vendor: Vendor) -> None:
    devs = await vendor.fleet(1, fault="ota-reverts")
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100],
                                                      "threshold": 100})
    cid = r.json()["campaign_id"]
    body = await eventually(lambda: _with_status(api, cid, "completed"), timeout=30)
    assert body["devices"][0]["state"] == "failed" and body["devices"][0]["code"] == -4025
    assert devs[0].firmware_version == "1.0.0"


async def test_an_old_online_event_handled_late_is_not_a_revert(api: httpx.AsyncClient, hub: Services,
                                                                  vendor: Vendor) -> None:
    """The engine's event stream redelivers what a busy engine did not acknowledge within its ack_wait: the unit's
    online state of before the update (1.0.0) comes back after its `done`. The twin shows 2.0.0 (the state that
    reached the broker last), so it is no revert (at 10,000 devices, 18 healthy units were failed -4025 so)."""
    (dev,) = await vendor.fleet(1)
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    cid = r.json()["campaign_id"]
    await eventually(lambda: _done(api, cid), timeout=30)
    engine, plane = hub.ota_engine, hub.plane
    assert engine is not None and plane is not None and plane.nc is not None
    handled = engine.handled
    old = encode_event(OnlineChanged(dev.did, hub.devices.cell_of(dev.did), True, 1, "1.0.0"))
    assert old is not None
    await plane.nc.jetstream().publish(SUBJECT, old)
    await eventually(lambda: engine.handled > handled, timeout=15)
    body = await _status(api, cid)
    assert body["devices"][0]["state"] == "done", body["devices"][0]


async def test_corrupted_download_is_refused_by_the_device(api: httpx.AsyncClient, hub: Services,
                                                           vendor: Vendor) -> None:
    devs = await vendor.fleet(1, fault="ota-bad-hash")
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    cid = r.json()["campaign_id"]
    body = await eventually(lambda: _with_status(api, cid, "halted"), timeout=30)
    assert body["devices"][0]["code"] == -4022
    assert devs[0].firmware_version == "1.0.0"


async def test_a_lost_offer_is_offered_again(api: httpx.AsyncClient, hub: Services, vendor: Vendor) -> None:
    dev = (await vendor.fleet(1))[0]
    real = dev.ota.start
    dropped: list[int] = []

    def lose_the_first(request_id: int, raw: object) -> None:
        if not dropped:
            dropped.append(request_id)  # as if the offer never reached the device
            return
        real(request_id, raw)

    dev.ota.start = lose_the_first  # type: ignore[method-assign]
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    body = await eventually(lambda: _done(api, r.json()["campaign_id"]), timeout=30)
    assert dropped and body["devices"][0]["offers"] == 2 and dev.firmware_version == "2.0.0"


def test_an_engine_tick_while_a_campaign_records_its_devices_neither_sees_nor_completes_it(
        services: Services, vendor_for: Callable[[], Vendor]) -> None:
    """The engine ticks at any moment: between the campaign's row and its devices' rows (10,000 devices take longer
    than a tick) it once found no devices, completed the campaign at once and offered nothing."""
    vendor = vendor_for()
    vendor.provision(3)
    vendor.image("2.0.0")
    ticked: list[int] = []
    real = services.twin.firmware_versions

    def tick_in_between(cell: str, dids: list[str]) -> dict[str, str]:
        for cid in services.campaigns.running():  # what the engine's tick does, at the worst moment
            ticked.append(cid)
            services.campaigns.evaluate(cid, "http://hub.example")
        return real(cell, dids)

    services.twin.firmware_versions = tick_in_between  # type: ignore[method-assign]
    try:
        c = services.campaigns.create(model=vendor.model, version="2.0.0", stages=[100])
    finally:
        services.twin.firmware_versions = real  # type: ignore[method-assign]
    assert ticked == []  # still preparing: not running yet
    assert c["status"] == "running" and c["counts"] == {"pending": 3}
    services.campaigns.evaluate(c["campaign_id"], "http://hub.example")  # the devices are offline: they wait
    assert services.campaigns.get(c["campaign_id"])["status"] == "running"


async def test_a_campaign_updates_no_more_devices_at_once_than_its_cap(api: httpx.AsyncClient, hub: Services,
                                                                       vendor: Vendor) -> None:
    """A stage of thousands offered at once is thousands of downloads, reboots and reconnects in the same seconds
    (it starved the auth callout at 10,000 devices): `max_in_flight` lets only that many update at a time."""
    devs = await vendor.fleet(5)
    running = [0]
    most = [0]
    for d in devs:
        real = d.ota.run

        async def counted(params: Any, real: Any = real) -> None:
            running[0] += 1
            most[0] = max(most[0], running[0])
            try:
                await asyncio.sleep(0.3)  # a slow download: without the cap all five would overlap here
                await real(params)
            finally:
                running[0] -= 1

        d.ota.run = counted  # type: ignore[method-assign]
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100],
                                                      "max_in_flight": 2})
    assert r.status_code == 201, r.text
    assert r.json()["max_in_flight"] == 2 and r.json()["max_per_minute"] == 0
    body = await eventually(lambda: _done(api, r.json()["campaign_id"]), timeout=60)
    assert body["counts"] == {"done": 5}
    assert all(d.firmware_version == "2.0.0" for d in devs)
    assert 1 <= most[0] <= 2, most[0]


async def test_a_campaign_offers_no_more_a_minute_than_its_cap(api: httpx.AsyncClient, hub: Services,
                                                               vendor: Vendor) -> None:
    devs = await vendor.fleet(4)
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100],
                                                      "max_per_minute": 2, "max_in_flight": 0})
    assert r.status_code == 201, r.text
    cid = r.json()["campaign_id"]

    async def two_done() -> dict | None:
        body = await _status(api, cid)
        return body if body["counts"].get("done") == 2 else None

    body = await eventually(two_done, timeout=30)
    assert body["counts"] == {"done": 2, "pending": 2} and body["status"] == "running"
    # a tick within the same minute offers nothing more; the two waiting devices are online and untouched
    assert hub.campaigns.evaluate(cid, "http://hub.example") == []
    assert sum(d.firmware_version == "1.0.0" for d in devs) == 2
    assert (await _status(api, cid))["counts"] == {"done": 2, "pending": 2}


async def test_a_device_back_on_the_new_version_whose_reports_were_lost_is_done(api: httpx.AsyncClient, hub: Services,
                                                                               vendor: Vendor) -> None:
    """A link that drops mid-update loses the device's last reports; the device comes back announcing the campaign's
    version. That is a done update — not one left `installing` until the hour's timeout."""
    dev = (await vendor.fleet(1))[0]
    real = dev.ota.progress

    def lose_the_result(version: str, state: Any, **kw: Any) -> None:
        if state in ("installing", "done"):
            return  # as if these never reached the cloud
        real(version, state, **kw)

    dev.ota.progress = lose_the_result  # type: ignore[method-assign]
    vendor.image("2.0.0")
    r = await api.post("/api/v1/ota/campaigns", json={"model": vendor.model, "version": "2.0.0", "stages": [100]})
    body = await eventually(lambda: _done(api, r.json()["campaign_id"]), timeout=30)
    assert body["counts"] == {"done": 1} and dev.firmware_version == "2.0.0"
    assert "came back on the version" in body["devices"][0]["message"]
