"""Sending `down` messages to MQTT devices from NATS: live (core) or stored for the device's MQTT session."""

from __future__ import annotations

from nats.aio.client import Client as NATS
from nats.js.api import PubAck

from ecohub.protocol.topics import MQTT_MSGS_PREFIX

MQTT_PUB_HEADER = "Nmqtt-Pub"  # first byte = QoS; without it a stored message is never delivered


def down_subject(did: str) -> str:
    """NATS subject of ecohub/{did}/down."""
    return f"ecohub.{did}.down"


async def send_live(nc: NATS, did: str, payload: bytes) -> None:
    """Core publish: reaches a connected device at QoS 0 only; lost when it is offline."""
    await nc.publish(down_subject(did), payload)


async def send_stored(nc: NATS, did: str, payload: bytes, qos: int = 1) -> PubAck:
    """JetStream publish into $MQTT_msgs: kept for a QoS>=1 persistent session, delivered (and redelivered) at QoS 1."""
    js = nc.jetstream()
    return await js.publish(MQTT_MSGS_PREFIX + down_subject(did), payload, headers={MQTT_PUB_HEADER: str(qos)})
