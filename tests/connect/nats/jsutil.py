"""Test helpers of the broker experiments: read streams back as (did, id) pairs; the alternatives ingest was
measured against."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import nats
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    DiscardPolicy,
    PubAck,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import NotFoundError

from ecohub.connect.nats.ingest import MAX_DELIVERIES_ADVISORY
from ecohub.protocol.topics import MQTT_MSGS_PREFIX

log = logging.getLogger(__name__)


async def read_ids(nc: nats.NATS, stream: str, filters: list[str] | None = None) -> list[tuple[str, int]]:
    """Every (did, id) stored in stream (through a throwaway AckNone pull consumer)."""
    js = nc.jetstream()
    name = f"audit_{secrets.token_hex(4)}"
    await js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=name,
            ack_policy=AckPolicy.NONE,
            deliver_policy=DeliverPolicy.ALL,
            filter_subjects=filters,
            inactive_threshold=30,
        ),
    )
    psub = await js.pull_subscribe_bind(durable=name, stream=stream)
    out: list[tuple[str, int]] = []
    try:
        while True:
            try:
                msgs = await psub.fetch(1000, timeout=1.0)
            except TimeoutError:  # nats-py raises its own subclass, or asyncio's when its deadline passed
                break
            for m in msgs:
                with_id = json.loads(m.data)
                out.append((with_id["did"], with_id["id"]))
    finally:
        await js.delete_consumer(stream, name)
    return out


# --- what the broker experiments (docs/nats-findings.md) compare ingest with: a stream capturing the subjects, a
# plain pull worker, core and stored `down` publishes. The product uses none of these (see connect/ingest.py).

STREAM = "ECOHUB_UP"
SUBJECTS = ["ecohub.*.up", "ecohub.*.state"]
MQTT_PUB_HEADER = "Nmqtt-Pub"  # first byte = QoS; without it a stored message is never delivered
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
            except TimeoutError:  # nats-py raises its own subclass, or asyncio's when its deadline passed
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


async def send_live(nc: nats.NATS, did: str, payload: bytes) -> None:
    """Core publish: reaches a connected device at QoS 0 only; lost when it is offline."""
    await nc.publish(f"ecohub.{did}.down", payload)


async def send_stored(nc: nats.NATS, did: str, payload: bytes, qos: int = 1) -> PubAck:
    """JetStream publish into $MQTT_msgs: kept for a QoS>=1 persistent session, delivered at QoS 1."""
    return await nc.jetstream().publish(f"{MQTT_MSGS_PREFIX}ecohub.{did}.down", payload,
                                        headers={MQTT_PUB_HEADER: str(qos)})
