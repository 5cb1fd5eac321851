"""The OTA engine's event stream: what ingest saw (a device online, its ota_progress) and campaigns created or
resumed, carried over JetStream from whichever process saw it to the one engine that leads.

Every process that ingests (`ecohub up`, each `ecohub ingest` worker) or changes campaigns (`ecohub api`) runs an
`OtaRelay`: it forwards those bus events, after the change committed, to the work-queue stream `ECOHUB_OTA`. The
leading engine pulls them from its one durable consumer and acknowledges each only once handled, so an event
published while no engine leads (a failover) waits in the stream, and one the dying leader had not handled is
delivered again to the next.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import APIError

from ecohub.bus import EventBus
from ecohub.connect.events import OnlineChanged, OtaProgressReported
from ecohub.ota.events import CampaignChanged
from ecohub.store import now_ms

log = logging.getLogger(__name__)
STREAM = "ECOHUB_OTA"
SUBJECT = "ecohub_internal.ota"  # devices may publish only to their own ecohub.{did}.up/state: not here
DURABLE = "ota-engine"
ACK_WAIT_S = 30.0
MAX_PENDING_EVENTS = 5_000_000  # the stream's bound (≈ 1 GB) while no engine leads; the oldest go first
BATCH = 500


async def ensure_stream(nc: NATS) -> None:
    """The work-queue stream and its one durable (idempotent; R3 on a cluster, R1 on a single node)."""
    js = nc.jetstream()
    for replicas in (3, 1):
        cfg = StreamConfig(name=STREAM, subjects=[SUBJECT], retention=RetentionPolicy.WORK_QUEUE,
                           storage=StorageType.FILE, max_age=7 * 86400, max_msgs=MAX_PENDING_EVENTS,
                           discard=DiscardPolicy.OLD, num_replicas=replicas)
        try:
            await js.add_stream(cfg)
            break
        except APIError:
            if replicas == 1:
                await js.stream_info(STREAM)  # exists already (made by another process, maybe as R3): fine
    with contextlib.suppress(APIError):  # exists already with the same settings
        await js.add_consumer(STREAM, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT,
                                                     ack_wait=ACK_WAIT_S, max_ack_pending=20_000))


def encode_event(event: Any) -> bytes | None:
    """The wire form of an event the engine reacts to (None: not one of those)."""
    at = now_ms()
    if isinstance(event, OnlineChanged) and event.online:
        body: dict[str, Any] = {"k": "online", "did": event.did, "cell": event.cell, "ts": event.ts,
                                "fw": event.firmware_version}
    elif isinstance(event, OtaProgressReported):
        body = {"k": "progress", "did": event.did, "cell": event.cell, "ts": event.ts, "version": event.version,
                "state": event.state, "progress": event.progress, "code": event.code, "message": event.message}
    elif isinstance(event, CampaignChanged) and event.reason in ("created", "resumed"):
        body = {"k": "evaluate", "campaign_id": event.campaign_id}
    else:
        return None
    body["at"] = at
    return json.dumps(body, separators=(",", ":")).encode()


def decode_event(data: bytes) -> tuple[str, Any, int]:
    """(kind, item, relayed at ms) as the engine's work queue holds it."""
    b = json.loads(data)
    kind = b["k"]
    if kind == "online":
        item: Any = OnlineChanged(b["did"], b["cell"], True, int(b["ts"]), b.get("fw"))
    elif kind == "progress":
        item = OtaProgressReported(b["did"], b["cell"], int(b["ts"]), b["version"], b["state"], int(b["progress"]),
                                   int(b["code"]), b.get("message", ""))
    elif kind == "evaluate":
        item = int(b["campaign_id"])
    else:
        raise ValueError(f"unknown OTA event kind {kind!r}")
    return kind, item, int(b.get("at", 0))


class OtaRelay:
    """`async with OtaRelay(bus=…, nc=…)`: the bus's OTA events of this process go to the stream, in order."""

    def __init__(self, *, bus: EventBus, nc: NATS) -> None:
        self.bus = bus
        self.nc = nc
        self.queue: asyncio.Queue[bytes] = asyncio.Queue()
        self.relayed = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> OtaRelay:
        await ensure_stream(self.nc)
        self._loop = asyncio.get_running_loop()
        for kind in (OnlineChanged, OtaProgressReported, CampaignChanged):
            self.bus.subscribe(kind, self._on_event)
        self._task = asyncio.create_task(self._run(), name="ota-relay")
        return self

    async def __aexit__(self, *exc: object) -> None:
        for kind in (OnlineChanged, OtaProgressReported, CampaignChanged):
            self.bus.unsubscribe(kind, self._on_event)
        with contextlib.suppress(TimeoutError):  # what is queued goes out before the process stops
            await asyncio.wait_for(self._drained(), timeout=5)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _drained(self) -> None:
        await self.queue.join()

    def _on_event(self, event: Any) -> None:
        """From the loop or a worker thread (a sync route publishes its events there)."""
        data = encode_event(event)
        if data is not None and self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.queue.put_nowait, data)

    async def _run(self) -> None:
        js = self.nc.jetstream()
        delay = 0.1
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < BATCH:
                batch.append(self.queue.get_nowait())
            while batch:
                results = await asyncio.gather(*(js.publish(SUBJECT, d) for d in batch), return_exceptions=True)
                failed = [d for d, r in zip(batch, results, strict=True) if isinstance(r, BaseException)]
                self.relayed += len(batch) - len(failed)
                for _ in range(len(batch) - len(failed)):
                    self.queue.task_done()
                batch = failed
                if failed:  # the broker is away: keep them (in order) and try again
                    log.warning("ota relay: %d event(s) not stored yet, retrying in %.1fs: %s", len(failed), delay,
                                next(r for r in results if isinstance(r, BaseException)))
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)
                else:
                    delay = 0.1


class EventFeed:
    """The leading engine's end of the stream: pull a batch, acknowledge (or put back) each event."""

    def __init__(self, nc: NATS) -> None:
        self.nc = nc
        self._psub: Any = None

    async def fetch(self, n: int = BATCH, timeout: float = 1.0) -> list[Msg]:  # noqa: ASYNC109
        """Up to `n` events (none after `timeout`)."""
        if self._psub is None:
            await ensure_stream(self.nc)
            self._psub = await self.nc.jetstream().pull_subscribe_bind(durable=DURABLE, stream=STREAM)
        try:
            return list(await self._psub.fetch(n, timeout=timeout))
        except (NatsTimeout, TimeoutError):
            return []

    async def close(self) -> None:
        """Stop pulling (this process no longer leads)."""
        if self._psub is not None:
            with contextlib.suppress(Exception):
                await self._psub.unsubscribe()
            self._psub = None
