"""Commands through the REST API: validated against the spec, sent to a real device, answered."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ecohub.bootstrap import Services
from ecohub.sdk.device import Device
from ecohub.sdk.faults import FAULTS
from ecohub.sdk.simulator import SimulatedDevice
from tests.conftest import load_spec
from tests.helpers import DEFINITION, eventually


@pytest.fixture
async def purifier(hub: Services) -> AsyncIterator[Device]:
    """A connected simulated air purifier (real spec with actions and writable properties)."""
    model = "zhimi.airp.rmb1"
    hub.products.import_spec(load_spec(model), model=model, actor="test", **DEFINITION)
    creds = hub.devices.provision(model=model)[0]
    dev = SimulatedDevice(did=creds.did, secret=creds.secret, spec=load_spec(model), port=hub.runtime.mqtt_port or 0)
    await dev.connect()
    yield dev
    await dev.disconnect()


async def test_set_properties_round_trip(api: httpx.AsyncClient, hub: Services, purifier: Device) -> None:
    r = await api.post(f"/api/v1/devices/{purifier.did}/commands",
                       json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["result"] == [{"siid": 2, "piid": 1, "code": 0}]
    assert purifier.values[(2, 1)] is True
    cell = hub.devices.cell_of(purifier.did)
    await eventually(lambda: hub.twin.get(cell, purifier.did)["properties"].get("2.1", {}).get("value") is True)


async def test_get_properties_and_action(api: httpx.AsyncClient, purifier: Device) -> None:
    purifier.values[(2, 4)] = 1
    r = await api.post(f"/api/v1/devices/{purifier.did}/commands",
                       json={"method": "get_properties", "params": [{"siid": 2, "piid": 4}]})
    assert r.status_code == 200, r.text
    assert r.json()["result"] == [{"siid": 2, "piid": 4, "code": 0, "value": 1}]
    r = await api.post(f"/api/v1/devices/{purifier.did}/commands",
                       json={"method": "action", "params": {"siid": 2, "aiid": 1, "in": []}})
    assert r.status_code == 200, r.text
    assert r.json()["result"]["code"] == 0


@pytest.mark.parametrize(("params", "status", "code"), [
    ([{"siid": 2, "piid": 2, "value": 1}], 422, "property_not_writable"),
    ([{"siid": 2, "piid": 4, "value": 99}], 422, "out_of_range"),
    ([{"siid": 2, "piid": 1, "value": "on"}], 422, "wrong_type"),
    ([{"siid": 42, "piid": 1, "value": 1}], 404, "unknown_property"),
    ("not-a-list", 422, "invalid_command"),
])
async def test_invalid_commands_are_refused_before_sending(api: httpx.AsyncClient, purifier: Device, params: object,
                                                           status: int, code: str) -> None:
    r = await api.post(f"/api/v1/devices/{purifier.did}/commands", json={"method": "set_properties", "params": params})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert purifier.received == []  # nothing reached the device


async def test_unknown_method_and_device(api: httpx.AsyncClient, purifier: Device) -> None:
    r = await api.post(f"/api/v1/devices/{purifier.did}/commands", json={"method": "reboot", "params": []})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_command"
    r = await api.post("/api/v1/devices/eu-0000000000000000/commands", json={"method": "get_properties",
                                                                           "params": [{"siid": 2, "piid": 1}]})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_device"


async def test_device_that_does_not_answer_times_out_with_command_id(api: httpx.AsyncClient, hub: Services) -> None:
    model = "zhimi.airp.rmb1"
    hub.products.import_spec(load_spec(model), model=model, actor="test", **DEFINITION)
    creds = hub.devices.provision(model=model)[0]
    dev = SimulatedDevice(did=creds.did, secret=creds.secret, spec=load_spec(model), port=hub.runtime.mqtt_port or 0,
                          fault=FAULTS["no-reply"])
    await dev.connect()
    try:
        r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                           json={"method": "get_properties", "params": [{"siid": 2, "piid": 1}], "timeout_s": 0.5})
        assert r.status_code == 504, r.text
        err = r.json()["error"]
        assert err["code"] == "command_timeout"
        assert isinstance(err["command_id"], int) and str(err["command_id"]) in err["message"]
        assert len(dev.received) == 1 and dev.received[0].id == err["command_id"]
    finally:
        await dev.disconnect()
