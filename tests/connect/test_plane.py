"""The embedded device plane: a real nats-server the hub supervises; devices get exactly their own topics."""

from __future__ import annotations

import asyncio

import httpx

from ecohub.bootstrap import Services
from ecohub.connect.plane import CONNECT_FAILURES
from ecohub.sdk.device import Device, DeviceError
from tests.connect.nats.mqttdev import raw_connack
from tests.connect.test_ingest import _device
from tests.helpers import eventually


async def test_a_killed_embedded_broker_is_restarted_and_ingest_carries_on(hub: Services, plug_model: str) -> None:
    plane = hub.plane
    assert plane is not None and plane.server is not None
    before = plane.server.pid
    plane.server.kill()  # SIGKILL, as an OOM killer would
    await eventually(lambda: plane.server is not None and plane.server.restarts == 1, timeout=15)
    assert plane.server.pid != before
    # the hub's own connections come back by themselves (the callout answers again), and so does a device
    await eventually(lambda: plane.nc is not None and plane.nc.is_connected, timeout=15)
    dev = await eventually(lambda: _connect_or_none(hub, plug_model), timeout=15)
    try:
        dev.report({(11, 1): 9})
        cell = hub.devices.cell_of(dev.did)
        await eventually(lambda: hub.twin.get(cell, dev.did)["properties"].get("11.1", {}).get("value") == 9,
                         timeout=20)
    finally:
        await dev.disconnect()
    async with httpx.AsyncClient(base_url=hub.runtime.http_url or "") as client:
        health = await eventually(lambda: client.get("/api/v1/health"), timeout=10)
        assert health.status_code == 200 and health.json()["ingest"][0]["alive"] is True


async def test_provisioning_writes_nothing_to_the_broker(hub: Services, plug_model: str) -> None:
    plane = hub.plane
    assert plane is not None and plane.server is not None
    conf = plane.server.conf_file.read_bytes()
    hub.devices.provision(model=plug_model, count=200)
    # the broker's configuration is the same, and no device is known to it until it connects
    assert plane.server.conf_file.read_bytes() == conf
    assert plane.responder is not None and plane.responder.stats.allowed == 0


async def _connect_or_none(hub: Services, model: str) -> Device | None:
    try:
        return await _device(hub, model)
    except DeviceError:
        return None  # refused while the broker was still coming back: a real device retries too


CONNECT_LIMIT = int(CONNECT_FAILURES["did"].split("/")[0])


async def test_wrong_secret_connects_are_throttled_per_device(hub: Services, plug_model: str) -> None:
    """A flood of wrong secrets for one did stops being checked (refused at once); other devices still connect."""
    victim, other = hub.devices.provision(model=plug_model, count=2)
    port = hub.runtime.mqtt_port or 0
    for i in range(CONNECT_LIMIT + 1):
        assert await asyncio.to_thread(raw_connack, "127.0.0.1", port, victim.did, victim.did, f"wrong-{i}") == 5
    checked = hub.plane.authority.refused if hub.plane else 0
    # now even the right secret is refused without a check, for a while
    assert await asyncio.to_thread(raw_connack, "127.0.0.1", port, victim.did, victim.did, victim.secret) == 5
    assert hub.plane is not None and hub.plane.authority.refused == checked  # not checked: refused up front
    assert await asyncio.to_thread(raw_connack, "127.0.0.1", port, other.did, other.did, other.secret) == 0
