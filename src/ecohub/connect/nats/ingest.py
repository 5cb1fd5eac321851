"""JetStream for ingest: the durable consumer on the MQTT layer's $MQTT_msgs (where a PUBACKed QoS 1 publish is)."""

from __future__ import annotations

from typing import Any

from nats.aio.client import Client as NATS
from nats.js.api import AckPolicy, ConsumerConfig

MQTT_MSGS = "$MQTT_msgs"  # created by the MQTT layer: every QoS 1/2 MQTT publish is stored here BEFORE the PUBACK
MQTT_FILTERS = ["$MQTT.msgs.ecohub.*.up", "$MQTT.msgs.ecohub.*.state"]
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"

async def ensure_consumer(
    nc: NATS,
    *,
    stream: str,
    durable: str = "ingest",
    filters: list[str] | None = None,
    max_ack_pending: int = 10_000,
    max_deliver: int = 5,
    ack_wait_s: float = 30.0,
) -> None:
    """A durable pull consumer with explicit per-message acks (AckPolicy.ALL is unsafe with several workers)."""
    js = nc.jetstream()
    cfg = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        max_ack_pending=max_ack_pending,
        max_deliver=max_deliver,
        ack_wait=ack_wait_s,
        filter_subjects=filters or None,
    )
    await js.add_consumer(stream, cfg)


async def ensure_mqtt_msgs_consumer(nc: NATS, durable: str = "ingest-mqtt", **kw: Any) -> None:
    """Durable on $MQTT_msgs: interest retention keeps each PUBACKed QoS 1 publish until this consumer acks it."""
    js = nc.jetstream()
    await js.stream_info(MQTT_MSGS)  # exists once the MQTT layer set up the account (first MQTT connect)
    await ensure_consumer(nc, stream=MQTT_MSGS, durable=durable, filters=MQTT_FILTERS, **kw)
