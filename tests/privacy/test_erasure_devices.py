"""Erasure releases the user's devices: unbound, re-keyed, their live sessions dropped, nothing more stored."""

from __future__ import annotations

import httpx
import pytest

from ecohub.bootstrap import Services
from ecohub.sdk.device import Device, DeviceError
from tests.conftest import load_spec
from tests.helpers import eventually
from tests.home.conftest import PASSWORD, asignup


async def test_erasure_unbinds_rekeys_and_disconnects_the_users_devices(hub: Services, plug_model: str) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann = (await asignup(http, "erased@example.org", country="DE"))["headers"]
        home = (await http.post("/api/v1/homes", json={"name": "Flat"}, headers=ann)).json()["home_id"]
        r = await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                            headers=ann)
        assert r.status_code == 201, r.text
        dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), host="127.0.0.1",
                     port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        try:
            dev.report({(11, 1): 1})
            cell = hub.devices.cell_of(creds.did)
            await eventually(lambda: hub.telemetry.count(cell, creds.did) == 1)
            r = await http.request("DELETE", "/api/v1/privacy/me", headers={**ann, "X-Password": PASSWORD})
            assert r.status_code == 202, r.text
            assert r.json()["steps"]["devices_released"] == {"status": "done", "devices": 1}
            # the live session is dropped by the broker within seconds, and the old secret opens nothing
            await eventually(lambda: not dev.connected.is_set(), timeout=5)
            again = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), host="127.0.0.1",
                           port=hub.runtime.mqtt_port or 0)
            with pytest.raises(DeviceError):
                await again.connect()
            assert hub.telemetry.count(cell, creds.did) == 0  # erased, and nothing new came in
        finally:
            await dev.disconnect()


async def test_an_erased_users_pending_wishes_never_reach_the_device(hub: Services, plug_model: str) -> None:
    """A wish set while the device was away belongs to its owner: erasing the owner forgets it, so the re-keyed
    device (whoever has it next) is never switched by the erased user."""
    creds = hub.devices.provision(model=plug_model)[0]
    cell = hub.devices.cell_of(creds.did)
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "", timeout=15) as http:
        ann = (await asignup(http, "wisher@example.org", country="DE"))["headers"]
        home = (await http.post("/api/v1/homes", json={"name": "Flat"}, headers=ann)).json()["home_id"]
        r = await http.post(f"/api/v1/homes/{home}/devices", json={"did": creds.did, "bind_code": creds.bind_code},
                            headers=ann)
        assert r.status_code == 201, r.text
        dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), host="127.0.0.1",
                     port=hub.runtime.mqtt_port or 0)
        await dev.connect()
        await eventually(lambda: hub.twin.get(cell, creds.did)["online"])
        await dev.disconnect()
        await eventually(lambda: hub.twin.get(cell, creds.did)["online"] is False)
        r = await http.post(f"/api/v1/me/devices/{creds.did}/properties", json={"values": {"2.1": True}},
                            headers=ann)
        assert r.status_code == 202, r.text
        r = await http.request("DELETE", "/api/v1/privacy/me", headers={**ann, "X-Password": PASSWORD})
        assert r.status_code == 202, r.text
    fresh = hub.devices.reset_credentials(creds.did)  # the device is reset and paired anew
    dev = Device(did=creds.did, secret=fresh.secret, spec=load_spec(plug_model), host="127.0.0.1",
                 port=hub.runtime.mqtt_port or 0)
    await dev.connect()
    try:
        await eventually(lambda: hub.twin.get(cell, creds.did)["online"])
        assert hub.commands is not None and await hub.commands.sweep() == 0
        r = await hub.commands.send(creds.did, "get_properties", [{"siid": 2, "piid": 1}], actor="test")
        assert r["status"] == "replied"  # any delivery published before this round trip has arrived
        assert not [m for m in dev.received if m.method == "set_properties"]
    finally:
        await dev.disconnect()
