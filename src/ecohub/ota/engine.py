"""The OTA engine: offers updates on `down`, reacts to progress and reconnects, ticks campaigns — in one process.

Any number of processes run one (`ecohub up`, every `ecohub api`); only the holder of the cells' lease
(`ota.lease`) acts, so exactly one engine offers, records and advances at a time. It learns what devices did from
the `ECOHUB_OTA` stream (`ota.relay`), which every ingesting process feeds, and acknowledges each event once
handled. Everything it does to the database runs in one worker task, in stream order, off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from nats.aio.msg import Msg

from ecohub.connect.events import OtaProgressReported
from ecohub.ota.lease import Lease
from ecohub.ota.relay import ACK_WAIT_S, EventFeed, decode_event
from ecohub.ota.service import CampaignService, Offer
from ecohub.protocol import Method, Topic, subject_of
from ecohub.protocol.messages import DownMessage, encode
from ecohub.store import now_ms

log = logging.getLogger(__name__)
Publish = Callable[[str, bytes], Awaitable[None]]
BATCH = 500  # work items handled in one go (then the touched campaigns are evaluated once)
# a `done` whose reconnect with the new version the twin does not show yet: that reconnect may sit in another
# ingest worker's batch, committed a moment later; the event is put back (NAK) and looked at again for this long
VERSION_GRACE_S = 10.0
FETCH_WAIT_S = 5.0
Item = tuple[str, Any, Msg | None, int]  # kind, payload, the stream message to acknowledge, relayed at (ms)


class OtaEngine:
    """`async with OtaEngine(...)`: leads while it holds the lease; pulls the stream, ticks, offers."""

    def __init__(self, *, service: CampaignService, feed: EventFeed, publish: Publish,
                 base_url: Callable[[], str | None], lease: Lease, tick_s: float = 2.0,
                 grace_s: float = VERSION_GRACE_S) -> None:
        self.service = service
        self.feed = feed
        self.publish = publish
        self.base_url = base_url
        self.lease = lease
        self.tick_s = tick_s
        self.grace_s = grace_s
        self.renew_s = max(0.2, lease.ttl_ms / 3000)
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ids = itertools.count(time.time_ns() // 1000)  # request ids: increasing, apart from command ids
        self.offers_sent = 0
        self.handled = 0  # work items done (ticks, reports, reconnects)
        self.deferred = 0  # done reports put back until the device's new version showed
        self.leading = asyncio.Event()
        self._handled = asyncio.Condition()

    async def __aenter__(self) -> OtaEngine:
        await self._renew()  # a lone process leads from its first moment
        self._tasks = [asyncio.create_task(self._lead(), name="ota-lease"),
                       asyncio.create_task(self._work(), name="ota-worker"),
                       asyncio.create_task(self._pull(), name="ota-pull"),
                       asyncio.create_task(self._tick(), name="ota-tick")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        await self.feed.close()
        if self.leading.is_set():
            with contextlib.suppress(Exception):  # the next engine need not wait for the lease to expire
                await asyncio.to_thread(self.lease.release)

    async def _renew(self) -> None:
        try:
            held = await asyncio.to_thread(self.lease.acquire)
        except Exception:
            log.exception("ota: the engine lease could not be renewed")
            held = False
        if held and not self.leading.is_set():
            log.info("ota: this process (%s) runs the OTA engine of %s", self.lease.holder, self.lease.name)
            self.leading.set()
        elif not held and self.leading.is_set():
            log.warning("ota: lost the OTA engine lease %s; another process leads", self.lease.name)
            self.leading.clear()

    async def _lead(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            await self._renew()

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            if self.leading.is_set():
                self.queue.put_nowait(("tick", None, None, 0))

    async def _pull(self) -> None:
        """While leading: a batch of events from the stream into the work queue, handled before the next."""
        delay = 0.2
        while True:
            if not self.leading.is_set():
                await self.feed.close()
                await self.leading.wait()
            try:
                # a long pull returns as soon as events are there: an idle engine asks the server less often
                msgs = await self.feed.fetch(BATCH, timeout=FETCH_WAIT_S)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("ota: reading the event stream failed, retrying in %.1fs: %s", delay, err)
                await self.feed.close()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            delay = 0.2
            if not msgs:
                continue
            target = self.handled + self.queue.qsize() + len(msgs)
            for m in msgs:
                try:
                    kind, item, at = decode_event(m.data)
                except (ValueError, KeyError, TypeError):
                    log.warning("ota: an unreadable event in the stream was dropped: %r", m.data[:200])
                    await m.term()
                    target -= 1
                    continue
                self.queue.put_nowait((kind, item, m, at))
            await self._wait_handled(target, msgs)

    async def _wait_handled(self, target: int, msgs: list[Msg]) -> None:
        """Until the batch is handled; meanwhile its messages are kept ours (`+WPI`): a batch that takes longer than
        the consumer's ack_wait (a starved engine: 500 events took > 30 s at 10,000 devices) must not come back as
        copies handled after newer events — an old online state after a `done` looked like a revert."""
        while self.handled < target:
            try:
                async with self._handled:
                    await asyncio.wait_for(self._handled.wait_for(lambda: self.handled >= target),
                                           timeout=ACK_WAIT_S / 3)
            except TimeoutError:
                await asyncio.gather(*(m.in_progress() for m in msgs), return_exceptions=True)

    async def _work(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < BATCH:  # a burst of reports: one evaluation after them
                batch.append(self.queue.get_nowait())
            deferred: set[int] = set()
            try:
                offers, deferred = await asyncio.to_thread(self._handle_batch, batch)
                for offer in offers:
                    await self._send(offer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ota: handling %s failed", [k for k, *_ in batch])
            await self._settle(batch, deferred)
            self.handled += len(batch)
            async with self._handled:
                self._handled.notify_all()

    async def _settle(self, batch: list[Item], deferred: set[int]) -> None:
        """Acknowledge the stream messages handled; put back the deferred ones for a second look."""
        acks = []
        for i, (_kind, _item, msg, _at) in enumerate(batch):
            if msg is not None:
                acks.append(msg.nak(delay=1.0) if i in deferred else msg.ack())
        self.deferred += len(deferred)
        for r in await asyncio.gather(*acks, return_exceptions=True):
            if isinstance(r, Exception):  # it comes back after ack_wait and is handled again (idempotent)
                log.warning("ota: acknowledging an event failed: %s", r)

    def _waits(self, item: OtaProgressReported, at: int) -> bool:
        return (now_ms() - at < self.grace_s * 1000
                and self.service.waits_for_version(item.cell, item.did, item.version, item.state))

    def _handle_batch(self, batch: list[Item]) -> tuple[list[Offer], set[int]]:
        offers: list[Offer] = []
        dirty: set[int] = set()
        deferred: set[int] = set()
        for i, (kind, item, msg, at) in enumerate(batch):
            try:
                if kind == "progress" and msg is not None and self._waits(item, at):
                    deferred.add(i)
                elif kind == "progress":
                    campaign_id = self.service.record_progress(item.cell, item.did, item.version, item.state,
                                                               item.progress, item.code, item.message)
                    if campaign_id is not None:
                        dirty.add(campaign_id)
                else:
                    offers += self._handle(kind, item, dirty)
            except Exception:
                log.exception("ota: handling %s failed", kind)
        base = self.base_url()
        for campaign_id in sorted(dirty):
            offers += self.service.evaluate(campaign_id, base)
        return offers, deferred

    async def tick_now(self) -> None:
        """Queue a tick and return once it (and everything queued before it) was handled."""
        target = self.handled + self.queue.qsize() + 1
        self.queue.put_nowait(("tick", None, None, 0))
        async with self._handled:
            await self._handled.wait_for(lambda: self.handled >= target)

    def _handle(self, kind: str, item: Any, dirty: set[int]) -> list[Offer]:
        base = self.base_url()
        if kind == "online":  # a finished update marks its campaign for one evaluation after the batch
            return self.service.on_online(item.cell, item.did, item.firmware_version, base, dirty)
        if kind == "evaluate":
            return self.service.evaluate(item, base)
        offers: list[Offer] = []
        for campaign_id in self.service.running():  # campaigns made by the CLI in another process, timeouts
            offers += self.service.evaluate(campaign_id, base)
        return offers

    async def _send(self, offer: Offer) -> None:
        body = DownMessage(next(self._ids), Method.OTA_UPDATE, offer.params)
        await self.publish(subject_of(Topic.down(offer.did)), encode(body))
        self.offers_sent += 1
