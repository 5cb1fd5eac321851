"""Online/offline comes from the retained state topic and the MQTT will."""

from __future__ import annotations

from ecohub.bootstrap import Services
from ecohub.sdk.device import Device
from tests.conftest import load_spec
from tests.helpers import eventually


async def test_online_then_offline_by_will_then_back(hub: Services, plug_model: str) -> None:
    creds = hub.devices.provision(model=plug_model)[0]
    cell = hub.devices.cell_of(creds.did)
    dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), port=hub.runtime.mqtt_port or 0,
                 keepalive=5)
    await dev.connect()
    await eventually(lambda: hub.twin.get(cell, creds.did)["online"] is True)
    await dev.disconnect(graceful=False)  # TCP drop without DISCONNECT: the broker publishes the will
    await eventually(lambda: hub.twin.get(cell, creds.did)["online"] is False, timeout=15)
    await dev.connect()
    await eventually(lambda: hub.twin.get(cell, creds.did)["online"] is True)
    await dev.disconnect()
    await eventually(lambda: hub.twin.get(cell, creds.did)["online"] is False)
