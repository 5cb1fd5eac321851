"""The hub's MQTT client across a broker restart: it subscribes again and keeps one entry per topic."""

from __future__ import annotations

import asyncio
from pathlib import Path

import paho.mqtt.client as paho
import pytest

from ecohub.connect.mqtt import Endpoint, HubClient
from tests.connect.test_no_loss import Mosquitto
from tests.helpers import eventually

pytestmark = [pytest.mark.mosquitto]


@pytest.mark.timeout(60)
async def test_resubscribes_after_a_broker_restart_without_growing_its_subscription_list(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    got: list[bytes] = []

    async def on_message(_topic: str, payload: bytes) -> None:
        got.append(payload)

    def publish(payload: bytes) -> None:
        pub = paho.Client(paho.CallbackAPIVersion.VERSION2)
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        pub.publish("probe/x", payload, qos=1).wait_for_publish(5)
        pub.loop_stop()
        pub.disconnect()

    try:
        async with HubClient(Endpoint("127.0.0.1", broker.port, 5, "unused"), client_id="hub-probe",
                             on_message=on_message) as client:
            client.subscribe("probe/#")
            await asyncio.sleep(0.3)
            await asyncio.to_thread(publish, b"before")
            await eventually(lambda: got == [b"before"])
            for _ in range(2):  # a clean session on a restarted broker: only a new SUBSCRIBE brings messages back
                await asyncio.to_thread(broker.stop)
                await eventually(lambda: not client.connected.is_set())
                await asyncio.to_thread(broker.start)
                await eventually(client.connected.is_set, timeout=15)
            await asyncio.sleep(0.3)
            await asyncio.to_thread(publish, b"after")
            await eventually(lambda: got == [b"before", b"after"])
            assert [s.topic for s in client.client.subscriptions] == ["probe/#"]
    finally:
        broker.stop()
