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


async def _behind_proxy(hub: Services, plug_model: str) -> tuple[BlackholeProxy, Device, str]:
    """A provisioned device connected to the hub's broker through a BlackholeProxy; its cell."""
    proxy = await BlackholeProxy.start(hub.runtime.mqtt_port or 0)
    creds = hub.devices.provision(model=plug_model)[0]
    dev = Device(did=creds.did, secret=creds.secret, spec=load_spec(plug_model), port=proxy.port)
    await dev.connect()
    return proxy, dev, hub.devices.cell_of(creds.did)


async def test_a_report_the_broker_never_acknowledged_is_sent_again_after_a_reconnect(hub: Services,
                                                                                    plug_model: str) -> None:
    """The link dies after the device sent a QoS 1 report and before the PUBACK: MQTT's at-least-once means the device
    sends it again on its next connection, and the twin gets it (before, the SDK dropped it with the old client)."""
    proxy, dev, cell = await _behind_proxy(hub, plug_model)
    try:
        await eventually(lambda: hub.twin.get(cell, dev.did)["online"] is True)
        proxy.blackhole = True  # what the device sends from now on never reaches the broker
        dev.report({(11, 1): 77})
        await asyncio.sleep(0.3)
        assert dev._client is not None and dev._client.unacked  # sent, not acknowledged
        proxy.blackhole = False
        proxy.drop()  # the link dies; the device reconnects through the proxy
        await eventually(lambda: dev.reconnects == 1, timeout=30)
        await eventually(lambda: hub.twin.get(cell, dev.did)["properties"].get("11.1", {}).get("value") == 77)
    finally:
        await dev.disconnect()
        proxy.close()


async def test_a_device_dropped_again_while_coming_back_keeps_reconnecting(hub: Services, plug_model: str) -> None:
    """The link dies a second time right after the device announced itself on reconnecting (a broker shedding
    connections does this): the SDK must go round again, not sit offline for good with its reports in the backlog."""
    proxy, dev, cell = await _behind_proxy(hub, plug_model)
    try:
        opened = dev._open
        opens = [0]

        async def open_then_drop() -> None:
            await opened()
            opens[0] += 1
            if opens[0] == 1:
                proxy.drop()  # dropped just after it was back and subscribed
                await eventually(lambda: not dev.connected.is_set(), timeout=10)

        dev._open = open_then_drop  # type: ignore[method-assign]
        proxy.drop()
        await eventually(lambda: opens[0] >= 2 and dev.connected.is_set(), timeout=30)
        dev.report({(11, 1): 78})
        await eventually(lambda: hub.twin.get(cell, dev.did)["properties"].get("11.1", {}).get("value") == 78)
        assert dev.reconnects == 1
    finally:
        await dev.disconnect()
        proxy.close()


class BlackholeProxy:
    """A TCP relay to the broker that can swallow what the client sends (a link that stops carrying) and drop every
    connection (the link dies)."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.blackhole = False
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @classmethod
    async def start(cls, upstream_port: int) -> BlackholeProxy:
        proxy = cls(upstream_port)
        proxy._server = await asyncio.start_server(proxy._relay, "127.0.0.1", 0)
        proxy.port = proxy._server.sockets[0].getsockname()[1]
        return proxy

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self._writers += [writer, up_writer]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter, swallow: bool) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    if not (swallow and self.blackhole):
                        dst.write(data)
                        await dst.drain()
            dst.close()

        await asyncio.gather(pump(reader, up_writer, True), pump(up_reader, writer, False))

    def drop(self) -> None:
        for w in self._writers:
            w.transport.abort()
        self._writers.clear()

    def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
