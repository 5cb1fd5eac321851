"""Desired state (shadow delta): a set_properties to an offline device waits in the twin and reaches the real
device once, in order, when it reconnects — also after a hub restart, and from one process only."""

from __future__ import annotations

import asyncio

import httpx
import nats

from ecohub.api.app import create_app
from ecohub.bootstrap import Services, bootstrap
from ecohub.connect.commands import CommandService
from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.events import OnlineChanged
from ecohub.hub import free_port, running_hub
from ecohub.protocol import Code, Method
from ecohub.sdk.simulator import SimulatedDevice
from ecohub.settings import Settings
from tests.conftest import load_spec
from tests.helpers import DEFINITION, eventually

MODEL = "zhimi.airp.rmb1"


def _sets(dev: SimulatedDevice) -> list[list[dict[str, object]]]:
    return [list(m.params) for m in dev.received if m.method == Method.SET_PROPERTIES]  # type: ignore[arg-type]


async def _offline_device(hub: Services) -> SimulatedDevice:
    """A purifier that connected once (the twin knows it) and went away."""
    hub.products.import_spec(load_spec(MODEL), model=MODEL, actor="test", **DEFINITION)
    creds = hub.devices.provision(model=MODEL)[0]
    dev = SimulatedDevice(did=creds.did, secret=creds.secret, spec=load_spec(MODEL), port=hub.runtime.mqtt_port or 0)
    await dev.connect()
    cell = hub.devices.cell_of(dev.did)
    await eventually(lambda: hub.twin.get(cell, dev.did)["online"])
    await dev.disconnect()
    await eventually(lambda: not hub.twin.get(cell, dev.did)["online"])
    dev.received.clear()
    return dev


async def _round_trip(api: httpx.AsyncClient, dev: SimulatedDevice) -> None:
    """A get_properties answered: whatever was published to the device before it has arrived."""
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "get_properties", "params": [{"siid": 2, "piid": 1}]})
    assert r.status_code == 200, r.text


def _twin(hub: Services, did: str) -> dict[str, object]:
    return hub.twin.get(hub.devices.cell_of(did), did)


async def test_set_while_offline_is_pending_then_delivered_once_on_reconnect(api: httpx.AsyncClient,
                                                                            hub: Services) -> None:
    dev = await _offline_device(hub)
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True},
                                                                    {"siid": 2, "piid": 4, "value": 2}]})
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending" and r.json()["desired"] == {"2.1": True, "2.4": 2}
    twin = (await api.get(f"/api/v1/devices/{dev.did}/twin")).json()
    assert {"online", "properties", "version"} <= twin.keys()
    assert twin["desired"]["2.1"]["state"] == "pending" and twin["delta"].keys() == {"2.1", "2.4"}

    await dev.connect()
    await eventually(lambda: len(_sets(dev)) == 1)
    assert _sets(dev)[0] == [{"siid": 2, "piid": 1, "value": True}, {"siid": 2, "piid": 4, "value": 2}]
    assert dev.values[(2, 1)] is True and dev.values[(2, 4)] == 2
    await eventually(lambda: _twin(hub, dev.did)["delta"] == {})
    desired = _twin(hub, dev.did)["desired"]
    assert desired["2.1"]["state"] == "acknowledged" and desired["2.1"]["code"] == 0  # type: ignore[index]
    # a sweep and another reconnect find nothing left to deliver
    assert hub.commands is not None and await hub.commands.sweep() == 0
    await dev.disconnect()
    await eventually(lambda: not _twin(hub, dev.did)["online"])
    await dev.connect()
    await eventually(lambda: _twin(hub, dev.did)["online"])
    await _round_trip(api, dev)
    assert len(_sets(dev)) == 1
    await dev.disconnect()


async def test_two_sets_while_offline_deliver_only_the_newest(api: httpx.AsyncClient, hub: Services) -> None:
    dev = await _offline_device(hub)
    for mode in (1, 2):
        r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                           json={"method": "set_properties", "params": [{"siid": 2, "piid": 4, "value": mode}]})
        assert r.status_code == 202, r.text
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True}]})
    assert r.status_code == 202
    await dev.connect()
    await eventually(lambda: len(_sets(dev)) == 1)
    # the newest value of 2.4 only, and the keys in the order they were set
    assert _sets(dev)[0] == [{"siid": 2, "piid": 4, "value": 2}, {"siid": 2, "piid": 1, "value": True}]
    await eventually(lambda: _twin(hub, dev.did)["delta"] == {})
    await dev.disconnect()


async def test_a_refused_value_is_recorded_failed_with_the_device_code(api: httpx.AsyncClient, hub: Services) -> None:
    dev = await _offline_device(hub)
    dev.on_set = lambda siid, piid, value: -4005 if (siid, piid) == (2, 1) else 0
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True}]})
    assert r.status_code == 202
    await dev.connect()
    await eventually(lambda: _twin(hub, dev.did)["desired"]["2.1"]["state"] == "failed")  # type: ignore[index]
    assert _twin(hub, dev.did)["desired"]["2.1"]["code"] == -4005  # type: ignore[index]
    assert "2.1" in _twin(hub, dev.did)["delta"]  # type: ignore[operator]
    await dev.disconnect()


async def test_other_methods_to_an_offline_device_still_time_out(api: httpx.AsyncClient, hub: Services) -> None:
    dev = await _offline_device(hub)
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "get_properties", "params": [{"siid": 2, "piid": 1}], "timeout_s": 0.3})
    assert r.status_code == 504 and r.json()["error"]["code"] == "command_timeout"


async def test_pending_survives_a_hub_restart(settings: Settings) -> None:
    services = bootstrap(settings)
    mqtt_port = free_port()
    try:
        async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=mqtt_port) as hub:
            dev = await _offline_device(hub)
            assert hub.commands is not None
            out = await hub.commands.send(dev.did, Method.SET_PROPERTIES, [{"siid": 2, "piid": 4, "value": 1}],
                                          actor="test")
            assert out["status"] == "pending"
    finally:
        services.close()
    services = bootstrap(settings)  # a new process on the same data dir
    try:
        async with running_hub(services, app_factory=create_app, http_port=free_port(), mqtt_port=mqtt_port) as hub:
            delta = _twin(hub, dev.did)["delta"]
            assert {k: v["value"] for k, v in delta.items()} == {"2.4": 1}  # type: ignore[attr-defined]
            await dev.connect()
            await eventually(lambda: len(_sets(dev)) == 1)
            assert _sets(dev)[0] == [{"siid": 2, "piid": 4, "value": 1}]
            await eventually(lambda: _twin(hub, dev.did)["delta"] == {})
            await dev.disconnect()
    finally:
        services.close()


async def test_two_hub_processes_racing_deliver_once(hub: Services) -> None:
    dev = await _offline_device(hub)
    assert hub.commands is not None and hub.plane is not None and hub.plane.nc is not None
    await hub.commands.send(dev.did, Method.SET_PROPERTIES, [{"siid": 2, "piid": 1, "value": True}], actor="test")
    hub.bus.unsubscribe(OnlineChanged, hub.commands._on_online)  # both deliver only when told, below
    other_services = bootstrap(hub.settings, migrate=False)  # a second process: its own services and broker link
    nc = await nats.connect(hub.plane.urls, user=SERVICE_USER, password=hub.plane.secrets.service_password)
    try:
        async with CommandService(dbs=other_services.dbs, devices=other_services.devices,
                                  products=other_services.products, nc=nc, timeout_s=5) as other:
            await dev.connect()
            cell = hub.devices.cell_of(dev.did)
            await eventually(lambda: _twin(hub, dev.did)["online"])
            results = await asyncio.gather(*(svc.deliver_pending(dev.did, cell)
                                             for svc in (hub.commands, other, hub.commands, other)))
            assert sum(r is not None for r in results) == 1
            await eventually(lambda: len(_sets(dev)) == 1)
            # every delivery attempt returned; a get round trip on the same down subject comes after any of them
            await hub.commands.send(dev.did, Method.GET_PROPERTIES, [{"siid": 2, "piid": 1}], actor="test")
            assert len(_sets(dev)) == 1
    finally:
        await nc.close()
        other_services.close()
        await dev.disconnect()



async def test_a_device_answering_an_absurd_code_is_recorded_failed(api: httpx.AsyncClient, hub: Services) -> None:
    """A hostile or broken device answers a code no database column holds: the value is failed, not a 500 and a
    claim left `sent` to be resent forever."""
    dev = await _offline_device(hub)
    dev.on_set = lambda siid, piid, value: 10**20
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True}]})
    assert r.status_code == 202
    await dev.connect()
    await eventually(lambda: _twin(hub, dev.did)["desired"]["2.1"]["state"] == "failed")  # type: ignore[index]
    assert _twin(hub, dev.did)["desired"]["2.1"]["code"] == int(Code.INTERNAL_ERROR)  # type: ignore[index]
    # online now: the same answer to a direct command is a reply, recorded, not a server error
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": False}]})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "replied"
    assert _twin(hub, dev.did)["desired"]["2.1"]["state"] == "failed"  # type: ignore[index]
    await dev.disconnect()


async def test_a_pending_value_the_new_spec_no_longer_allows_is_not_sent(api: httpx.AsyncClient,
                                                                         hub: Services) -> None:
    """Values are checked against the spec when they are set, and again when they are delivered: a new major spec
    version that made a property read-only meanwhile must not reach the device with the old wish."""
    dev = await _offline_device(hub)
    r = await api.post(f"/api/v1/devices/{dev.did}/commands",
                       json={"method": "set_properties", "params": [{"siid": 2, "piid": 1, "value": True},
                                                                    {"siid": 2, "piid": 4, "value": 2}]})
    assert r.status_code == 202
    spec = load_spec(MODEL)
    for service in spec["services"]:
        for prop in service.get("properties", []):
            if (service["iid"], prop["iid"]) == (2, 1):
                prop["access"] = ["read", "notify"]
    hub.products.import_spec(spec, model=MODEL, actor="test", major=True)
    await dev.connect()
    await eventually(lambda: _twin(hub, dev.did)["desired"]["2.1"]["state"] == "failed")  # type: ignore[index]
    assert _twin(hub, dev.did)["desired"]["2.1"]["code"] == int(Code.PROPERTY_NOT_WRITABLE)  # type: ignore[index]
    await eventually(lambda: len(_sets(dev)) == 1)
    assert _sets(dev)[0] == [{"siid": 2, "piid": 4, "value": 2}]
    await eventually(lambda: _twin(hub, dev.did)["desired"]["2.4"]["state"] == "acknowledged")  # type: ignore[index]
    await dev.disconnect()
