"""Online/offline comes from the retained state topic and the MQTT will."""

from __future__ import annotations

import asyncio
import contextlib

from nats.js.api import AckPolicy, ConsumerConfig
from sqlalchemy import update

from ecohub.bootstrap import Services
from ecohub.connect.models import BrokerStream
from ecohub.connect.nats.ingest import MQTT_MSGS
from ecohub.sdk.device import Device
from ecohub.twin.models import Twin, TwinProperty
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


async def test_a_state_redelivered_after_a_newer_one_does_not_put_the_device_back(hub: Services,
                                                                                  plug_model: str) -> None:
    """A worker took the device's first online state (firmware 1.0.0) and stalled past ack_wait; meanwhile the device
    came back on 2.0.0 and that was stored. JetStream redelivers the old state: the twin keeps 2.0.0 (in the 10,000
    device OTA bench, such redeliveries failed 10 healthy updates as 'came back on 1.0.0')."""
    plane = hub.plane
    assert plane is not None and plane.nc is not None
    js = plane.nc.jetstream()
    durable = "test-stale-state"
    await js.add_consumer(MQTT_MSGS, ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT,
                                                    max_deliver=5, ack_wait=1.0,
                                                    filter_subjects=["$MQTT.msgs.ecohub.*.state"]))
    stalled = await js.pull_subscribe_bind(durable=durable, stream=MQTT_MSGS)
    creds = hub.devices.provision(model=plug_model)[0]
    cell = hub.devices.cell_of(creds.did)
    dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), port=hub.runtime.mqtt_port or 0,
                 firmware_version="1.0.0")
    worker = hub.ingest_worker(plane.nc, durable=durable, name="test-stale-state")
    running: asyncio.Task[None] | None = None
    try:
        await dev.connect()
        (old,) = await stalled.fetch(1, timeout=10)  # taken, never acknowledged
        assert b"1.0.0" in old.data
        dev.firmware_version = "2.0.0"
        dev.announce_state()  # the device rebooted into 2.0.0
        await eventually(lambda: hub.twin.get(cell, creds.did).get("firmware_version") == "2.0.0")
        await stalled.unsubscribe()
        running = asyncio.create_task(worker.run())  # this worker gets 2.0.0, then the redelivered 1.0.0
        await eventually(lambda: worker.stats.stale == 1, timeout=15)
        twin = hub.twin.get(cell, creds.did)
        assert twin["firmware_version"] == "2.0.0" and twin["online"] is True
    finally:
        if running is not None:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        await dev.disconnect()
        await js.delete_consumer(MQTT_MSGS, durable)


async def test_a_broker_stream_created_anew_restarts_the_twins_order(hub: Services, plug_model: str) -> None:
    """A wiped JetStream store numbers messages from 1 again: the twin must follow the devices' next messages, not
    take them all for older than what it stored."""
    creds = hub.devices.provision(model=plug_model)[0]
    cell = hub.devices.cell_of(creds.did)
    dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), port=hub.runtime.mqtt_port or 0)
    try:
        await dev.connect()
        dev.report({(11, 1): 5})
        await eventually(lambda: hub.twin.get(cell, creds.did)["properties"].get("11.1", {}).get("value") == 5)
        with hub.dbs.cell_session(cell) as s:  # the twin's order came from a stream since created anew
            row = s.get(BrokerStream, MQTT_MSGS)
            assert row is not None and row.created_ms > 0
            row.created_ms -= 1
            s.execute(update(TwinProperty).where(TwinProperty.did == creds.did).values(seq=10**12))
            s.execute(update(Twin).where(Twin.did == creds.did).values(state_seq=10**12))
        await hub.workers[0].check_stream()
        dev.report({(11, 1): 6})
        await dev.disconnect()
        await eventually(lambda: hub.twin.get(cell, creds.did)["properties"]["11.1"]["value"] == 6)
        await eventually(lambda: hub.twin.get(cell, creds.did)["online"] is False)
    finally:
        await dev.disconnect()
