"""The OTA engine of a hub process: offers updates on `down`, reacts to progress and reconnects, ticks campaigns.

Everything it does to the database runs in one worker task, in order (a device's `installing`, its reconnect with
the new version and its `done` arrive in that order and are handled in that order), off the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ecohub.bus import EventBus
from ecohub.connect.events import OnlineChanged, OtaProgressReported
from ecohub.ota.events import CampaignChanged
from ecohub.ota.service import CampaignService, Offer
from ecohub.protocol import Method, Topic, subject_of
from ecohub.protocol.messages import DownMessage, encode

log = logging.getLogger(__name__)
Publish = Callable[[str, bytes], Awaitable[None]]
BATCH = 500  # work items handled in one go (then the touched campaigns are evaluated once)


class OtaEngine:
    """`async with OtaEngine(...)`: subscribes to the bus, runs the worker and the periodic tick as named tasks."""

    def __init__(self, *, service: CampaignService, bus: EventBus, publish: Publish,
                 base_url: Callable[[], str | None], tick_s: float = 2.0) -> None:
        self.service = service
        self.bus = bus
        self.publish = publish
        self.base_url = base_url
        self.tick_s = tick_s
        self.queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._ids = itertools.count(time.time_ns() // 1000)  # request ids: increasing, apart from command ids
        self.offers_sent = 0
        self.handled = 0  # work items done (ticks, reports, reconnects)
        self._handled = asyncio.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None

    def _put(self, item: tuple[str, Any]) -> None:
        """Queue work from the loop or from a thread (a sync route publishes its events from a worker thread)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.queue.put_nowait, item)

    async def __aenter__(self) -> OtaEngine:
        self._loop = asyncio.get_running_loop()
        self.bus.subscribe(OnlineChanged, self._on_online)
        self.bus.subscribe(OtaProgressReported, self._on_progress)
        self.bus.subscribe(CampaignChanged, self._on_changed)
        self._tasks = [asyncio.create_task(self._work(), name="ota-worker"),
                       asyncio.create_task(self._tick(), name="ota-tick")]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.bus.unsubscribe(OnlineChanged, self._on_online)
        self.bus.unsubscribe(OtaProgressReported, self._on_progress)
        self.bus.unsubscribe(CampaignChanged, self._on_changed)
        for t in self._tasks:
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def _on_online(self, event: OnlineChanged) -> None:
        if event.online:
            self._put(("online", event))

    def _on_progress(self, event: OtaProgressReported) -> None:
        self._put(("progress", event))

    def _on_changed(self, event: CampaignChanged) -> None:
        if event.reason in ("created", "resumed"):  # a campaign created or resumed in this process starts now
            self._put(("evaluate", event.campaign_id))

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.tick_s)
            self._put(("tick", None))

    async def _work(self) -> None:
        while True:
            batch = [await self.queue.get()]
            while not self.queue.empty() and len(batch) < BATCH:  # a burst of reports: one evaluation after them
                batch.append(self.queue.get_nowait())
            try:
                offers = await asyncio.to_thread(self._handle_batch, batch)
                for offer in offers:
                    await self._send(offer)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("ota: handling %s failed", [k for k, _ in batch])
            self.handled += len(batch)
            async with self._handled:
                self._handled.notify_all()

    def _handle_batch(self, batch: list[tuple[str, Any]]) -> list[Offer]:
        offers: list[Offer] = []
        dirty: set[int] = set()
        for kind, item in batch:
            try:
                if kind == "progress":
                    campaign_id = self.service.record_progress(item.cell, item.did, item.version, item.state,
                                                               item.progress, item.code, item.message)
                    if campaign_id is not None:
                        dirty.add(campaign_id)
                else:
                    offers += self._handle(kind, item)
            except Exception:
                log.exception("ota: handling %s failed", kind)
        base = self.base_url()
        for campaign_id in sorted(dirty):
            offers += self.service.evaluate(campaign_id, base)
        return offers

    async def tick_now(self) -> None:
        """Queue a tick and return once it (and everything queued before it) was handled."""
        target = self.handled + self.queue.qsize() + 1
        self._put(("tick", None))
        async with self._handled:
            await self._handled.wait_for(lambda: self.handled >= target)

    def _handle(self, kind: str, item: Any) -> list[Offer]:
        base = self.base_url()
        if kind == "online":
            return self.service.on_online(item.cell, item.did, item.firmware_version, base)
        if kind == "progress":
            return self.service.on_progress(item.cell, item.did, item.version, item.state, item.progress, item.code,
                                            item.message, base)
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
