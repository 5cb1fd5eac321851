"""JetStream ingest: the ECOHUB_UP stream (or a durable on the MQTT layer's $MQTT_msgs) and pull workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

STREAM = "ECOHUB_UP"
SUBJECTS = ["ecohub.*.up", "ecohub.*.state"]
MQTT_MSGS = "$MQTT_msgs"  # created by the MQTT layer: every QoS 1/2 MQTT publish is stored here BEFORE the PUBACK
MQTT_FILTERS = ["$MQTT.msgs.ecohub.*.up", "$MQTT.msgs.ecohub.*.state"]
MAX_DELIVERIES_ADVISORY = "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.{stream}.{consumer}"

Handler = Callable[[Msg], Awaitable[None]]


@dataclass(frozen=True)
class StreamSpec:
    """Limits of the ingest stream."""

    name: str = STREAM
    subjects: tuple[str, ...] = tuple(SUBJECTS)
    max_msgs: int = 10_000_000
    max_bytes: int = 8 * 1024**3
    max_age_s: float = 7 * 24 * 3600
    discard_new: bool = True
    replicas: int = 1


async def ensure_stream(nc: NATS, spec: StreamSpec = StreamSpec()) -> None:
    """Create or update the file-storage limits stream."""
    js = nc.jetstream()
    cfg = StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        storage=StorageType.FILE,
        retention=RetentionPolicy.LIMITS,
        max_msgs=spec.max_msgs,
        max_bytes=spec.max_bytes,
        max_age=spec.max_age_s,
        discard=DiscardPolicy.NEW if spec.discard_new else DiscardPolicy.OLD,
        num_replicas=spec.replicas,
    )
    try:
        await js.stream_info(spec.name)
        await js.update_stream(cfg)
    except NotFoundError:
        await js.add_stream(cfg)


async def ensure_consumer(
    nc: NATS,
    *,
    stream: str = STREAM,
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


def device_of(subject: str) -> str:
    """did of ecohub.{did}.up / $MQTT.msgs.ecohub.{did}.up."""
    parts = subject.split(".")
    return parts[-2]


class Worker:
    """One pull worker: fetch a batch, run the handler per message, ack it (nak on handler error)."""

    def __init__(
        self,
        nc: NATS,
        handler: Handler,
        *,
        stream: str = STREAM,
        durable: str = "ingest",
        batch: int = 100,
        fetch_timeout: float = 1.0,
    ) -> None:
        self.nc, self.handler, self.stream, self.durable = nc, handler, stream, durable
        self.batch, self.fetch_timeout = batch, fetch_timeout
        self.processed = 0
        self._task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        """Loop until cancelled."""
        js = self.nc.jetstream()
        psub = await js.pull_subscribe_bind(durable=self.durable, stream=self.stream)
        while True:
            try:
                msgs = await psub.fetch(self.batch, timeout=self.fetch_timeout)
            except NatsTimeout:
                continue
            except Exception:  # reconnecting, leader change: back off briefly
                log.warning("fetch failed", exc_info=True)
                await asyncio.sleep(0.2)
                continue
            for m in msgs:
                try:
                    await self.handler(m)
                except Exception:
                    log.exception("handler failed; nak for redelivery")
                    await m.nak(delay=1)
                    continue
                await m.ack()
                self.processed += 1

    def start(self) -> Worker:
        """Run in a task."""
        self._task = asyncio.create_task(self.run(), name=f"ingest-{self.durable}")
        return self

    async def stop(self) -> None:
        """Cancel the task."""
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


async def watch_max_deliveries(
    nc: NATS, cb: Callable[[dict[str, Any]], Awaitable[None]], *, stream: str = STREAM, consumer: str = "ingest"
) -> Subscription:
    """Subscribe to the advisory sent when a message exhausted max_deliver (its payload has stream_seq)."""

    async def on(m: Msg) -> None:
        await cb(json.loads(m.data))

    return await nc.subscribe(MAX_DELIVERIES_ADVISORY.format(stream=stream, consumer=consumer), cb=on)
