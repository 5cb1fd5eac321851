"""One embedded broker holds more than a thousand devices subscribed to their commands at QoS 1."""

from __future__ import annotations

import asyncio

import pytest

from ecohub.bootstrap import Services
from ecohub.protocol import Topic
from tests.connect.nats.mqttdev import connect_packet, subscribe_packet

pytestmark = pytest.mark.slow  # 1,100 MQTT sessions: run with -m slow

DEVICES = 1100  # nats-server 2.15 refused the 1,000th QoS 1 subscription until the hub lifted its consumer cap


async def _session(port: int, did: str, secret: str) -> tuple[asyncio.StreamWriter, int]:
    """CONNECT and SUBSCRIBE ecohub/{did}/down at QoS 1 over a raw socket; → (the open writer, SUBACK code)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(connect_packet(did, did, secret, keepalive=60))
    connack = await reader.readexactly(4)
    assert connack[3] == 0, f"{did}: CONNACK {connack[3]}"
    writer.write(subscribe_packet(1, Topic.down(did), qos=1))
    suback = await reader.readexactly(5)
    return writer, suback[4]


async def test_more_than_a_thousand_devices_get_their_qos1_command_subscription(hub: Services,
                                                                               plug_model: str) -> None:
    creds = hub.devices.provision(model=plug_model, count=DEVICES)
    port = hub.runtime.mqtt_port or 0
    sem = asyncio.Semaphore(16)

    async def one(did: str, secret: str) -> tuple[asyncio.StreamWriter, int]:
        async with sem:
            return await _session(port, did, secret)

    sessions = await asyncio.gather(*(one(c.did, c.secret) for c in creds))
    try:
        refused = [c.did for c, (_, code) in zip(creds, sessions, strict=True) if code != 1]
        assert refused == [], f"{len(refused)} of {DEVICES} SUBACKs refused (0x80)"
    finally:
        for writer, _ in sessions:
            writer.close()
