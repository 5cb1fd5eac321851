"""The ingest worker: batches device messages, writes twin + telemetry + dead letters per cell, acks after commit."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import insert
from sqlalchemy.exc import InterfaceError, OperationalError

from ecohub.bus import EventBus
from ecohub.connect.events import EventReported, MessageDeadLettered, OnlineChanged, PropertiesReported
from ecohub.connect.models import DeadLetter, InboxEntry
from ecohub.connect.mqtt import Endpoint, HubClient
from ecohub.connect.pipeline import DEAD_PAYLOAD_KEEP, Pipeline, Processed
from ecohub.privacy.sealing import PayloadSealer
from ecohub.protocol import Topic
from ecohub.store import Databases, now_ms
from ecohub.store.upsert import insert_new
from ecohub.telemetry.service import TelemetryService
from ecohub.twin.service import Report, TwinService

log = logging.getLogger(__name__)
RECV_BUFFER = 128 * 1024
TRANSIENT = (OperationalError, InterfaceError)  # the database is down, restarting or locked: wait, do not split


@dataclass(slots=True)
class IngestStats:
    """Counters a user can read to see the pipeline working."""

    received: int = 0
    stored: int = 0
    samples: int = 0
    events: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    replies: int = 0
    batches: int = 0
    write_retries: int = 0
    restarts: int = 0  # crashes survived by restarting
    dropped: int = 0  # messages whose dead letter the store refused too (logged; should stay 0)
    unacked: int = 0  # messages delivered to this worker and not yet acknowledged
    peak_unacked: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(slots=True)
class _Pending:
    topic: str
    payload: bytes
    seq: int
    done: asyncio.Future[None]


def digest(payload: bytes) -> int:
    """A signed 64-bit hash of a payload: with (did, id) it tells a redelivery from a new message reusing an id."""
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big", signed=True)


class IngestWorker:
    """Consumes `ecohub/+/up` and `ecohub/+/state`; one transaction per cell per batch; never one per message."""

    def __init__(self, *, dbs: Databases, pipeline: Pipeline, bus: EventBus, endpoint: Endpoint,
                 sealer: PayloadSealer, batch_size: int = 500, batch_ms: float = 5.0, max_inflight: int = 5000,
                 client_id: str = "ecohub-ingest", share_group: str | None = None) -> None:
        self.dbs = dbs
        self.pipeline = pipeline
        self.bus = bus
        self.endpoint = endpoint
        self.sealer = sealer
        self.batch_size = batch_size
        self.batch_s = batch_ms / 1000
        self.client_id = client_id
        self.share_group = share_group if endpoint.mqtt_version == 5 else None
        self.stats = IngestStats()
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self.max_inflight = max_inflight
        self._room = asyncio.Semaphore(max_inflight)
        self.ready = asyncio.Event()
        self._client: HubClient | None = None
        self._reading_paused = False
        self._seq = 0
        self._alive = False

    async def _on_message(self, topic: str, payload: bytes) -> None:
        # Back-pressure: the PUBACK goes out only when the batch holding this message committed, and with
        # MQTT 5 the broker sends at most `receive_maximum` (= max_inflight) unacknowledged messages, so a slow
        # or absent database stops the flow at the broker instead of growing a buffer here.
        stats = self.stats
        stats.unacked += 1
        stats.peak_unacked = max(stats.peak_unacked, stats.unacked)
        if stats.unacked >= self.max_inflight and not self._reading_paused and self._client is not None:
            # Brokers differ in how they honour receive-maximum; stop reading the socket so nothing more
            # arrives until the database has caught up (the broker keeps the messages queued).
            self._reading_paused = self._client.pause_reading(True)
        try:
            async with self._room:
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                self._seq = max(self._seq + 1, time.time_ns())  # arrival order, monotonic in this worker
                self._pending.append(_Pending(topic, payload, self._seq, done))
                stats.received += 1
                if len(self._pending) >= self.batch_size:
                    self._wake.set()
                await done
        finally:
            stats.unacked -= 1
            if self._reading_paused and stats.unacked <= self.max_inflight // 2 and self._client is not None:
                self._client.pause_reading(False)
                self._reading_paused = False

    @property
    def alive(self) -> bool:
        """Whether the worker is consuming right now (the hub's /health fails when it is not)."""
        return self._alive

    async def run_supervised(self, *, max_backoff_s: float = 5.0) -> None:
        """Run until cancelled; a crash is logged, counted and followed by a restart (with backoff)."""
        delay = 0.1
        while True:
            try:
                await self.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.restarts += 1
                log.exception("ingest worker %s crashed; restarting in %.1fs", self.client_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff_s)

    async def run(self) -> None:
        """Connect, subscribe and flush batches until cancelled."""
        async with HubClient(self.endpoint, client_id=self.client_id, on_message=self._on_message,
                             clean=False, receive_maximum=self.max_inflight, recv_buffer=RECV_BUFFER) as client:
            self._client = client
            client.subscribe(Topic.all_up(self.share_group), Topic.all_state(self.share_group))
            self.ready.set()
            self._alive = True
            try:
                await self._flush_forever()
            finally:
                self._alive = False
                if self._pending:
                    await self._flush()

    async def _flush_forever(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.batch_s)
            except TimeoutError:
                pass
            self._wake.clear()
            while self._pending:
                await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending[: self.batch_size], self._pending[self.batch_size :]
        received = now_ms()
        processed = [self.pipeline.process(p.topic, p.payload, received) for p in batch]
        for item, pending in zip(processed, batch, strict=True):
            item.seq = pending.seq
        by_cell: dict[str, list[Processed]] = defaultdict(list)
        for item in processed:
            by_cell[item.cell or self.pipeline.default_cell].append(item)
        events: list[Any] = []
        for cell, items in by_cell.items():
            events += await self._write_with_retry(cell, items, received)
        for p in batch:
            if not p.done.done():
                p.done.set_result(None)
        self.stats.batches += 1
        self.bus.publish(events)

    async def _write_with_retry(self, cell: str, items: list[Processed], received: int) -> list[Any]:
        """Write a batch; a database outage is waited out, a message the database refuses is found and dead-lettered.

        An outage (connection lost, database locked) holds the acknowledgements and retries with backoff, so the
        broker keeps the messages. Any other error is a message the store cannot take (a value it cannot
        represent, a bug): the batch is split in halves until the one message is found, which becomes a dead
        letter, while every other message of the batch is stored.
        """
        delay = 0.05
        while True:
            try:
                return await asyncio.to_thread(self._write, cell, items, received)
            except TRANSIENT as err:
                self.stats.write_retries += 1
                log.warning("ingest write to cell %s failed, retrying in %.2fs: %s", cell, delay, err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception as err:
                if len(items) > 1:
                    mid = len(items) // 2
                    return (await self._write_with_retry(cell, items[:mid], received)
                            + await self._write_with_retry(cell, items[mid:], received))
                if items[0].write_failed:
                    log.exception("ingest could not store even the dead letter of a message on %s; dropped",
                                  items[0].topic[:256])
                    self.stats.dropped += 1
                    return []
                log.warning("ingest: the store refused one message on %s: %s", items[0].topic[:256], err)
                items = [items[0].as_write_failure(f"the store refused the message: {type(err).__name__}: "
                                                   f"{str(err)[:300]}")]

    def _write(self, cell: str, items: list[Processed], received: int) -> list[Any]:
        """One transaction: dedup by (did, id), telemetry, twin, dead letters. Returns events to publish."""
        seen: set[tuple[str, int, int]] = set()
        keyed: list[dict[str, Any]] = []
        keys: dict[int, tuple[str, int, int]] = {}
        for p in items:
            if p.msg_id is not None and p.did and p.model and not p.is_reply:
                key = (p.did, p.msg_id, digest(p.payload))
                keys[id(p)] = key
                if key not in seen:
                    seen.add(key)
                    keyed.append({"did": p.did, "msg_id": p.msg_id, "digest": key[2], "received_ms": received})
        events: list[Any] = []
        samples: list[dict[str, Any]] = []
        dev_events: list[dict[str, Any]] = []
        reports: list[Report] = []
        bumps: dict[str, int] = defaultdict(int)
        online: dict[str, tuple[bool, int]] = {}
        dead: list[dict[str, Any]] = []
        stats = IngestStats()
        with self.dbs.cell_session(cell) as s:
            new = set(insert_new(s, InboxEntry.__table__, keyed, keys=["did", "msg_id", "digest"],
                                 returning=[InboxEntry.did, InboxEntry.msg_id, InboxEntry.digest]))
            taken: set[tuple[str, int, int]] = set()
            for p in items:
                if p.is_reply:
                    stats.replies += 1
                    continue
                if id(p) in keys:
                    key = keys[id(p)]
                    if key not in new or key in taken:
                        stats.duplicates += 1
                        continue
                    taken.add(key)
                assert p.did is not None or p.dead
                if p.did and p.model and p.samples:
                    values = {}
                    for k, v in p.samples:
                        samples.append({"did": p.did, "key": k, "ts": p.ts, "value": v, "msg_id": p.msg_id})
                        reports.append((p.did, k, v, p.ts, p.msg_id, p.seq))
                        values[k] = v
                    bumps[p.did] += 1
                    events.append(PropertiesReported(p.did, p.model, cell, p.ts, values))
                for siid, eiid, args in p.events:
                    dev_events.append({"did": p.did, "siid": siid, "eiid": eiid, "arguments": args, "ts": p.ts,
                                       "msg_id": p.msg_id})
                    events.append(EventReported(p.did or "", p.model or "", cell, siid, eiid, p.ts, args))
                if p.online is not None and p.did:
                    online[p.did] = (p.online, p.ts)
                    events.append(OnlineChanged(p.did, cell, p.online, p.ts))
                for code, reason in p.dead:
                    dead.append({"did": p.did, "topic": p.topic[:256], "msg_id": p.msg_id, "code": code,
                                 "reason": reason, "payload": p.payload[:DEAD_PAYLOAD_KEEP],
                                 "size": len(p.payload), "received_ms": received})
                    events.append(MessageDeadLettered(p.did, cell, code, reason))
                if p.samples or p.events or p.online is not None:
                    stats.stored += 1
            seals = self.sealer.seals(s, cell, bumps.keys() | {e["did"] for e in dev_events}) \
                if samples or dev_events else {}
            TelemetryService.append(s, samples, dev_events, seals)
            if reports:
                TwinService.apply_reports(s, reports, bumps, received, seals)
            if online:
                TwinService.apply_online(s, online)
            if dead:
                s.execute(insert(DeadLetter), dead)
        self.stats.stored += stats.stored
        self.stats.replies += stats.replies
        self.stats.duplicates += stats.duplicates
        self.stats.samples += len(samples)
        self.stats.events += len(dev_events)
        self.stats.dead_letters += len(dead)
        return events
