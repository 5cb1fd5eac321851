"""End to end on a real hub: claim, control by name, desired vs reported, and unbinding that leaves nothing behind."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from ecohub.bootstrap import Services
from ecohub.sdk.device import Device, DeviceError
from tests.conftest import load_spec
from tests.helpers import DEFINITION, eventually
from tests.home.conftest import asignup


async def _user(http: httpx.AsyncClient, email: str) -> dict[str, str]:
    return dict((await asignup(http, email))["headers"])


def _device(hub: Services, did: str, secret: str, model: str) -> Device:
    return Device(did=did, secret=secret, spec=load_spec(model), host="127.0.0.1", port=hub.runtime.mqtt_port or 0)


async def test_user_controls_and_a_new_owner_sees_nothing_of_the_old(hub: Services, plug_model: str) -> None:
    creds = hub.devices.provision(model=plug_model, cell="eu")[0]
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann = await _user(http, "ann@example.org")
        home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann)).json()["home_id"]
        r = await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                            headers=ann)
        assert r.status_code == 201
        dev = _device(hub, creds.did, creds.secret, plug_model)
        await dev.connect()
        try:
            dev.report({(2, 1): True, (11, 1): 5})
            dev.emit_event(*next(iter(dev.compiled.events)), {})

            async def reported() -> Any:
                d = (await http.get(f"/api/v1/me/devices/{creds.did}", headers=ann)).json()
                props = {p["key"]: p for p in d["properties"]}
                return props if (props["11.1"]["reported"] or {}).get("value") == 5 else None

            props = await eventually(reported)
            assert props["2.1"]["reported"]["value"] is True and props["2.1"]["pending"] is False
            # control by name, through the one user API, and by "prop" on the commands route
            r = await http.post(f"/api/v1/me/devices/{creds.did}/properties", json={"values": {"switch.on": False}},
                                headers=ann)
            assert r.status_code == 200 and r.json()["status"] == "replied", r.text
            r = await http.post(f"/api/v1/devices/{creds.did}/commands", headers=ann,
                                json={"method": "get_properties", "params": [{"prop": "switch.on"}]})
            assert r.json()["result"][0]["value"] is False
            await eventually(lambda: hub.twin.get("eu", creds.did)["properties"]["2.1"]["value"] is False)
        finally:
            await dev.disconnect()
        # desired vs reported: the device is away, the wish stays pending (202) until it comes back
        await eventually(lambda: hub.twin.get("eu", creds.did)["online"] is False)
        r = await http.post(f"/api/v1/me/devices/{creds.did}/properties",
                            json={"values": {"2.1": True}, "timeout_s": 0.3}, headers=ann)
        assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["command_id"], r.text
        twin = (await http.get(f"/api/v1/devices/{creds.did}/twin", headers=ann)).json()
        assert twin["properties"]["2.1"]["value"] is False and twin["pending"]["2.1"]["value"] is True
        assert twin["delta"]["2.1"]["value"] is True and twin["desired"]["2.1"]["state"] == "pending"
        d = (await http.get(f"/api/v1/me/devices/{creds.did}", headers=ann)).json()
        on = next(p for p in d["properties"] if p["key"] == "2.1")
        assert on["pending"] is True and on["desired"]["value"] is True and on["reported"]["value"] is False

        # unbind: credentials reset; the old secret is dead
        r = await http.delete(f"/api/v1/homes/{home}/devices/{creds.did}", headers=ann)
        assert r.status_code == 200
        new = r.json()
        assert not hub.devices.verify(creds.did, creds.secret) and hub.devices.verify(creds.did, new["secret"])
        with pytest.raises(DeviceError):
            await _device(hub, creds.did, creds.secret, plug_model).connect()
        assert (await http.get(f"/api/v1/devices/{creds.did}/twin", headers=ann)).status_code == 404

        # a new owner: nothing of the old owner's twin, wishes, telemetry or events
        bob = await _user(http, "bob@example.org")
        bob_home = (await http.post("/api/v1/homes", json={"name": "Nido"}, headers=bob)).json()["home_id"]
        r = await http.post(f"/api/v1/homes/{bob_home}/devices", headers=bob,
                            json={"did": creds.did, "bind_code": new["bind_code"]})
        assert r.status_code == 201
        assert hub.twin.get("eu", creds.did)["properties"], "the old data is still stored; only the epoch hides it"
        twin = (await http.get(f"/api/v1/devices/{creds.did}/twin", headers=bob)).json()
        assert twin["properties"] == {} and twin["pending"] == {} and twin["delta"] == {}
        for key in ("2.1", "11.1"):
            r = await http.get(f"/api/v1/devices/{creds.did}/telemetry", params={"key": key}, headers=bob)
            assert r.json()["samples"] == []
        assert (await http.get(f"/api/v1/devices/{creds.did}/events", headers=bob)).json() == []
        listed = (await http.get("/api/v1/me/devices", headers=bob)).json()
        assert all(p["reported"] is None and p["desired"] is None for p in listed[0]["properties"])

        # the reset device comes back with its new secret; the new owner sees only what it reports now
        dev = _device(hub, creds.did, new["secret"], plug_model)
        await dev.connect()
        try:
            dev.report({(11, 1): 9})

            async def fresh() -> Any:
                r = await http.get(f"/api/v1/devices/{creds.did}/telemetry", params={"key": "11.1"}, headers=bob)
                return r.json()["samples"]

            samples = await eventually(fresh)
            assert [s["value"] for s in samples] == [9]
            # the old owner's pending wish died with the unbinding: it never reaches the device
            assert hub.commands is not None and await hub.commands.sweep() == 0
            assert not [m for m in dev.received if m.method == "set_properties"]
            twin = (await http.get(f"/api/v1/devices/{creds.did}/twin", headers=bob)).json()
            assert set(twin["properties"]) == {"11.1"} and twin["online"] is True
        finally:
            await dev.disconnect()


async def test_unbinding_drops_the_connected_device_and_announces_it(hub: Services, plug_model: str) -> None:
    from ecohub.home.events import DeviceBound, DeviceUnbound

    seen: list[object] = []
    hub.bus.subscribe(DeviceBound, seen.append)
    hub.bus.subscribe(DeviceUnbound, seen.append)
    creds = hub.devices.provision(model=plug_model, cell="eu")[0]
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann = await _user(http, "ann@example.org")
        home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann)).json()["home_id"]
        await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                        headers=ann)
        dev = _device(hub, creds.did, creds.secret, plug_model)
        await dev.connect()
        try:
            assert dev.connected.is_set()
            assert (await http.delete(f"/api/v1/homes/{home}/devices/{creds.did}", headers=ann)).status_code == 200
            await eventually(lambda: not dev.connected.is_set())
        finally:
            await dev.disconnect(graceful=False)
    assert [type(e).__name__ for e in seen] == ["DeviceBound", "DeviceUnbound"]


async def test_a_partners_wish_for_its_unit_never_reaches_the_user_who_binds_it(hub: Services) -> None:
    """A partner may command its unsold unit; once a user binds it, what the partner left pending must not switch
    the user's device (a user's device is never the partner's to command)."""
    hub.products.import_spec(load_spec("cuco.plug.v3"), model="acme.plug.v1", actor="test", partner_id="acme",
                             **DEFINITION)
    creds = hub.devices.provision(model="acme.plug.v1", cell="eu")[0]
    acme = {"Authorization": f"Bearer {hub.tokens.create(role='partner', partner_id='acme')['token']}"}
    dev = _device(hub, creds.did, creds.secret, "cuco.plug.v3")
    await dev.connect()
    await eventually(lambda: hub.twin.get("eu", creds.did)["online"])
    await dev.disconnect()
    await eventually(lambda: hub.twin.get("eu", creds.did)["online"] is False)
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        r = await http.post(f"/api/v1/devices/{creds.did}/commands", headers=acme,
                            json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True}]})
        assert r.status_code == 202, r.text
        ann = await _user(http, "ann@example.org")
        home = (await http.post("/api/v1/homes", json={"name": "Casa"}, headers=ann)).json()["home_id"]
        r = await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                            headers=ann)
        assert r.status_code == 201, r.text
        await dev.connect()
        try:
            await eventually(lambda: hub.twin.get("eu", creds.did)["online"])
            assert hub.commands is not None and await hub.commands.sweep() == 0
            r = await http.post(f"/api/v1/devices/{creds.did}/commands", headers=ann,
                                json={"method": "get_properties", "params": [{"siid": 2, "piid": 1}]})
            assert r.status_code == 200, r.text  # a round trip: any delivery published before it has arrived
            assert not [m for m in dev.received if m.method == "set_properties"]
        finally:
            await dev.disconnect()
