"""One embedded broker holds more than a thousand devices subscribed to their commands at QoS 1."""

from __future__ import annotations

import asyncio

import pytest

from ecohub.bootstrap import Services

pytestmark = pytest.mark.slow  # 1,100 MQTT sessions: run with -m slow

DEVICES = 1100  # nats-server 2.15 refused the 1,000th QoS 1 subscription until the hub lifted its consumer cap


def _field(b: bytes) -> bytes:
    return len(b).to_bytes(2, "big") + b


def _remaining(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


async def _session(port: int, did: str, secret: str) -> tuple[asyncio.StreamWriter, int]:
    """CONNECT and SUBSCRIBE ecohub/{did}/down at QoS 1 over a raw socket; → (the open writer, SUBACK code)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = _field(b"MQTT") + bytes([4, 0xC2]) + (60).to_bytes(2, "big") + _field(did.encode()) \
        + _field(did.encode()) + _field(secret.encode())
    writer.write(bytes([0x10]) + _remaining(len(body)) + body)
    connack = await reader.readexactly(4)
    assert connack[3] == 0, f"{did}: CONNACK {connack[3]}"
    topic = f"ecohub/{did}/down".encode()
    sub = (1).to_bytes(2, "big") + _field(topic) + bytes([1])
    writer.write(bytes([0x82]) + _remaining(len(sub)) + sub)
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
