"""The ingest worker: batches device messages, writes twin + telemetry + dead letters per cell, acks after commit."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm import Session

from ecohub.bus import EventBus
from ecohub.connect.events import (
    EventReported,
    MessageDeadLettered,
    OnlineChanged,
    OtaProgressReported,
    PropertiesReported,
)
from ecohub.connect.models import BrokerStream, DeadLetter, InboxEntry
from ecohub.connect.nats.ingest import MAX_DELIVERIES_ADVISORY, MQTT_MSGS
from ecohub.connect.nats.pull import NAK, PROGRESS, Puller, ack_all, stream_seq
from ecohub.connect.pipeline import DEAD_PAYLOAD_KEEP, DeadCode, Pipeline, Processed
from ecohub.privacy.sealing import PayloadSealer
from ecohub.protocol import topic_of
from ecohub.store import Databases, now_ms
from ecohub.store.upsert import insert_new_rows
from ecohub.telemetry.service import TelemetryService
from ecohub.twin.service import Report, TwinService, replaces

log = logging.getLogger(__name__)
FETCH_WAIT_S = 1.0  # an idle fetch returns after this long (the loop notices a lost connection)
TRANSIENT = (OperationalError, InterfaceError)  # the database is down, restarting or locked: wait, do not split
INBOX_COLUMNS, INBOX_KEY = ("did", "msg_id", "digest", "received_ms"), ("did", "msg_id", "digest")
# called inside a batch's transaction with its session, cell and domain events, before the commit: what must be as
# durable as the change itself (the apps' push outbox) is written there, never in a handler after the commit
Stage = Callable[[Session, str, list[Any]], None]


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
    stale: int = 0  # state messages older than the one the twin shows (redelivered, or written late): not applied

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


def digest(payload: bytes) -> int:
    """A signed 64-bit hash of a payload: with (did, id) it tells a redelivery from a new message reusing an id."""
    return int.from_bytes(hashlib.blake2b(payload, digest_size=8).digest(), "big", signed=True)


class IngestWorker:
    """Pulls device messages from the durable JetStream consumer; one transaction per cell per batch; acks after.

    Several workers (tasks or processes) share the one durable: JetStream hands each message to one of them and
    redelivers what a dead worker had not acknowledged (`ack_wait`); `max_ack_pending` bounds what they hold, so a
    slow or absent database stops the flow at the broker, which keeps the messages.
    """

    def __init__(self, *, dbs: Databases, pipeline: Pipeline, bus: EventBus, nc: NATS, sealer: PayloadSealer,
                 durable: str, batch_size: int = 500, batch_ms: float = 5.0, name: str = "ecohub-ingest",
                 stage: Stage | None = None) -> None:
        self.dbs = dbs
        self.stage = stage
        self.pipeline = pipeline
        self.bus = bus
        self.nc = nc
        self.sealer = sealer
        self.durable = durable
        self.batch_size = batch_size
        self.batch_s = max(batch_ms / 1000, 0.001)
        self.client_id = name
        self.stats = IngestStats()
        self.ready = asyncio.Event()
        self._alive = False
        self._puller: Puller | None = None
        self._waiting: list[Msg] = []  # the next batch, prepared, while the previous one is written

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
                self._alive = False
                self.stats.restarts += 1
                log.exception("ingest worker %s crashed; restarting in %.1fs", self.client_id, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, max_backoff_s)

    async def run(self) -> None:
        """Bind to the durable and write batches until cancelled.

        Two stages overlap: while one batch is written (in a thread) and then acknowledged, the next is fetched and
        decoded on the loop. Writes stay in order, one at a time (one writer), and a batch is acknowledged only
        after its own commit."""
        await self.check_stream()
        given_up = await self.watch_given_up()
        writing: asyncio.Task[None] | None = None
        try:
            async with Puller(self.nc, stream=MQTT_MSGS, durable=self.durable, batch=self.batch_size,
                              expires_s=FETCH_WAIT_S) as puller:
                self._puller = puller
                self.ready.set()
                self._alive = True
                while True:
                    msgs = await puller.take(linger_s=self.batch_s, wait_s=FETCH_WAIT_S)
                    if not msgs:
                        self._alive = self.nc.is_connected
                        if writing is not None and writing.done():
                            done, writing = writing, None
                            done.result()  # a failed write stops the loop (run_supervised restarts it)
                        continue
                    self._alive = True
                    topics = [topic_of(m.subject) for m in msgs]
                    batch = self._prepare(msgs, topics, await self._models(msgs, topics))
                    if writing is not None:
                        self._waiting = msgs
                        await asyncio.shield(writing)  # a stop lets the batch being written finish and be acked
                    writing = asyncio.create_task(self._commit(msgs, batch), name=f"{self.client_id}-write")
                    self._waiting = []
        finally:
            self._alive = False
            if writing is not None and not writing.done():
                # the batch being written finishes (and is acknowledged) before the worker stops
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(writing, timeout=10)
            # what was fetched but not written goes back to the stream at once (not after ack_wait)
            with contextlib.suppress(Exception):
                await ack_all(self.nc, [*self._waiting, *(self._puller.held if self._puller else [])], NAK)
            self._waiting = []
            self._puller = None
            with contextlib.suppress(Exception):
                await given_up.unsubscribe()

    async def watch_given_up(self) -> Subscription:
        """Dead-letter what JetStream gave up redelivering (every worker that took it stopped before acking it).

        One worker of the queue group takes each advisory, reads the message from the stream, stores it as a dead
        letter (`undeliverable`) and deletes it, so it neither blocks the stream nor disappears silently."""
        advisory = MAX_DELIVERIES_ADVISORY.format(stream=MQTT_MSGS, consumer=self.durable)
        return await self.nc.subscribe(advisory, queue="ecohub-ingest-dead", cb=self._given_up)

    async def _given_up(self, advisory: Msg) -> None:
        try:
            info = json.loads(advisory.data)
            seq, deliveries = int(info["stream_seq"]), int(info.get("deliveries", 0))
            js = self.nc.jetstream()
            raw = await js.get_msg(MQTT_MSGS, seq)
        except Exception:
            log.warning("ingest: could not read a message JetStream gave up on", exc_info=True)
            return
        received = now_ms()
        item = self.pipeline.process(topic_of(raw.subject or ""), raw.data or b"", received)
        item.seq = seq
        failed = item.as_write_failure(f"not stored after {deliveries} deliveries: each worker that took it "
                                       "stopped before storing it", code=DeadCode.UNDELIVERABLE)
        events = await self._write_with_retry(item.cell or self.pipeline.default_cell, [failed], received)
        with contextlib.suppress(Exception):
            await js.delete_msg(MQTT_MSGS, seq)
        self.bus.publish(events)

    async def check_stream(self) -> None:
        """The twin orders values by the stream's sequence numbers; a stream created anew (a wiped JetStream store,
        another cluster) restarts them at 1, so the order the twin stored is forgotten (else every new message would
        look older than the last one stored, and the twin would stop following the devices)."""
        info = await self.nc.jetstream().stream_info(MQTT_MSGS)
        if info.created is None:
            return
        created = int(info.created.timestamp() * 1000)
        for cell in self.dbs.cells:
            await asyncio.to_thread(self._note_stream, cell, created)

    def _note_stream(self, cell: str, created: int) -> None:
        # another worker may note it at the same moment (IntegrityError: it did)
        with contextlib.suppress(IntegrityError), self.dbs.cell_session(cell) as s:
            row = s.get(BrokerStream, MQTT_MSGS)
            if row is None:
                s.add(BrokerStream(name=MQTT_MSGS, created_ms=created))
            elif row.created_ms != created:
                log.warning("ingest: the broker's stream %s was created anew (%d, was %d); cell %s's twins take "
                            "the next message of each device as the newest", MQTT_MSGS, created, row.created_ms, cell)
                TwinService.forget_arrival_order(s)
                row.created_ms = created

    async def _models(self, msgs: list[Msg], topics: list[str]) -> dict[str, str | None]:
        """The models of a batch's devices: from memory, else read in a few queries off the event loop (a device
        reporting once a minute is never still cached, and a query per message on the loop held up everything the
        loop carries). A database outage is waited out holding the batch, as a write is: a good message must not
        become a dead letter because its device could not be looked up."""
        known, missing = self.pipeline.cached(topics)
        delay = 0.05
        while missing:
            try:
                known.update(await asyncio.to_thread(self.pipeline.lookup, missing))
                break
            except TRANSIENT as err:
                self.stats.write_retries += 1
                log.warning("ingest: looking up %d devices failed, retrying in %.2fs: %s", len(missing), delay, err)
                await self._still_working(msgs)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception:
                log.exception("ingest: looking up %d devices failed; each message is looked up alone", len(missing))
                break
        return known

    def _prepare(self, msgs: list[Msg], topics: list[str], models: dict[str, str | None],
                 ) -> tuple[int, dict[str, list[Processed]]]:
        """Decode, authorise and validate a batch (`topics`: the messages' MQTT topics; no I/O when `models` has
        their devices) → (the time it was received, the items by cell)."""
        received = now_ms()
        self.stats.received += len(msgs)
        by_cell: dict[str, list[Processed]] = defaultdict(list)
        default = self.pipeline.default_cell
        for item, m in zip(self.pipeline.process_batch(zip(topics, (m.data for m in msgs), strict=True), received,
                                                       models), msgs, strict=True):
            item.seq = stream_seq(m.reply)  # the broker's arrival order: the twin's newer-wins rule
            by_cell[item.cell or default].append(item)
        return received, by_cell

    async def _commit(self, msgs: list[Msg], prepared: tuple[int, dict[str, list[Processed]]]) -> None:
        """Write a prepared batch, one transaction per cell, then acknowledge it and publish its events."""
        received, by_cell = prepared
        events: list[Any] = []
        for cell, items in by_cell.items():
            events += await self._write_with_retry(cell, items, received, lambda: self._still_working(msgs))
        # only now, with every message of the batch durably stored (or dead-lettered), the broker may forget them
        await ack_all(self.nc, msgs)
        self.stats.batches += 1
        self.bus.publish(events)

    async def _still_working(self, msgs: list[Msg]) -> None:
        """A database outage must not make JetStream redeliver what this worker holds: the batch being written and
        what the puller has buffered behind it."""
        with contextlib.suppress(Exception):
            held = self._puller.held if self._puller is not None else []
            await ack_all(self.nc, [*msgs, *self._waiting, *held], PROGRESS)

    async def _write_with_retry(self, cell: str, items: list[Processed], received: int,
                                keepalive: Callable[[], Awaitable[None]] | None = None) -> list[Any]:
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
                if keepalive is not None:
                    await keepalive()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            except Exception as err:
                if len(items) > 1:
                    mid = len(items) // 2
                    return (await self._write_with_retry(cell, items[:mid], received, keepalive)
                            + await self._write_with_retry(cell, items[mid:], received, keepalive))
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
        keyed: list[tuple[str, int, int, int]] = []
        keys: dict[int, tuple[str, int, int]] = {}
        for p in items:
            if p.msg_id is not None and p.did and p.model and not p.is_reply:
                key = (p.did, p.msg_id, digest(p.payload))
                keys[id(p)] = key
                if key not in seen:
                    seen.add(key)
                    keyed.append((*key, received))
        events: list[Any] = []
        samples: list[dict[str, Any]] = []
        dev_events: list[dict[str, Any]] = []
        reports: list[Report] = []
        bumps: dict[str, int] = defaultdict(int)
        online: dict[str, tuple[bool, int, int, str | None]] = {}
        dead: list[dict[str, Any]] = []
        stats = IngestStats()
        with self.dbs.cell_session(cell) as s:
            # the arrival order of the state each twin shows: an older state message (JetStream redelivered it after
            # its ack_wait, or another worker's batch held it) must not put a device back on its old state
            state_dids = {p.did for p in items if p.online is not None and p.did}
            shown = TwinService.state_seqs(s, state_dids) if state_dids else {}
            new = set(insert_new_rows(s, InboxEntry.__table__, keyed, columns=INBOX_COLUMNS, keys=INBOX_KEY))
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
                    if not replaces(p.seq, shown.get(p.did)):
                        stats.stale += 1
                        continue
                    shown[p.did] = p.seq
                    prev = online.get(p.did)
                    firmware = p.firmware_version if p.firmware_version is not None or prev is None else prev[3]
                    online[p.did] = (p.online, p.ts, p.seq, firmware)
                    events.append(OnlineChanged(p.did, cell, p.online, p.ts, p.firmware_version))
                if p.ota_progress is not None and p.did:
                    o = p.ota_progress
                    events.append(OtaProgressReported(p.did, cell, p.ts, o.version, o.state, o.progress, o.code,
                                                      o.message))
                for code, reason in p.dead:
                    dead.append({"did": p.did, "topic": p.topic[:256], "msg_id": p.msg_id, "code": code,
                                 "reason": reason, "payload": p.payload[:DEAD_PAYLOAD_KEEP],
                                 "size": len(p.payload), "received_ms": received})
                    events.append(MessageDeadLettered(p.did, cell, code, reason))
                if p.samples or p.events or p.online is not None or p.ota_progress is not None:
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
            if self.stage is not None and events:
                self.stage(s, cell, events)
        self.stats.stored += stats.stored
        self.stats.replies += stats.replies
        self.stats.duplicates += stats.duplicates
        self.stats.stale += stats.stale
        self.stats.samples += len(samples)
        self.stats.events += len(dev_events)
        self.stats.dead_letters += len(dead)
        return events
