"""Live updates for browsers: a bus subscriber fans device events out to one asyncio.Queue per open page (SSE)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from ecohub.bus import EventBus
from ecohub.connect.events import EventReported, OnlineChanged, PropertiesReported
from ecohub.notify.events import NotificationCreated
from ecohub.notify.messages import localized

QUEUE_SIZE = 500
HEARTBEAT_S = 15.0
MAX_STREAM_S = 300.0  # browsers reconnect on their own; a bounded stream never holds a shutdown for long


@dataclass(eq=False)
class Listener:
    """One open page: the devices it may see (None: all), whose notifications it gets (None: nobody's), its queue."""

    dids: frozenset[str] | None
    loop: asyncio.AbstractEventLoop
    user: str | None = None
    locale: str | None = None  # notifications are worded in the page's language (None: the account's)
    queue: asyncio.Queue[dict[str, Any]] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))

    def offer(self, item: dict[str, Any]) -> None:
        """Queue an update without blocking; a page too slow to keep up misses updates, never the hub."""
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(item)


class LiveHub:
    """Subscribes once to the device events on the bus and hands them to listening pages."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.listeners: set[Listener] = set()
        self.messages = 0
        bus.subscribe(PropertiesReported, self._on_props)
        bus.subscribe(OnlineChanged, self._on_online)
        bus.subscribe(EventReported, self._on_event)
        bus.subscribe(NotificationCreated, self._on_notification)

    def close(self) -> None:
        """Stop listening to the bus."""
        self.bus.unsubscribe(PropertiesReported, self._on_props)
        self.bus.unsubscribe(OnlineChanged, self._on_online)
        self.bus.unsubscribe(EventReported, self._on_event)
        self.bus.unsubscribe(NotificationCreated, self._on_notification)

    def _fan_out(self, did: str, item: dict[str, Any]) -> None:
        self.messages += 1
        for listener in list(self.listeners):
            if listener.dids is None or did in listener.dids:
                try:
                    listener.loop.call_soon_threadsafe(listener.offer, item)
                except RuntimeError:  # that page's loop is gone
                    self.listeners.discard(listener)

    def _on_notification(self, event: NotificationCreated) -> None:
        for listener in list(self.listeners):
            # a user's own pages; an app's stream only when the device is granted (or none is named)
            if listener.user != event.user_id or (event.did and listener.dids is not None
                                                  and event.did not in listener.dids):
                continue
            worded = (localized(event.notification, listener.locale) if listener.locale
                      else event.localized or event.notification)
            try:
                listener.loop.call_soon_threadsafe(listener.offer, {"type": "notification", **worded})
            except RuntimeError:
                self.listeners.discard(listener)

    def _on_props(self, event: PropertiesReported) -> None:
        self._fan_out(event.did, {"type": "props", "did": event.did, "ts": event.ts, "values": event.values})

    def _on_online(self, event: OnlineChanged) -> None:
        self._fan_out(event.did, {"type": "online", "did": event.did, "ts": event.ts, "online": event.online})

    def _on_event(self, event: EventReported) -> None:
        self._fan_out(event.did, {"type": "event", "did": event.did, "ts": event.ts,
                                  "name": f"{event.siid}.{event.eiid}", "arguments": event.arguments})

    async def stream(self, dids: frozenset[str] | None, *, is_disconnected: Any,
                     user: str | None = None, locale: str | None = None) -> AsyncIterator[str]:
        """Server-sent events for one page until it goes away (or MAX_STREAM_S passes: the browser reconnects);
        with `user`, that user's notifications too."""
        listener = Listener(dids, asyncio.get_running_loop(), user, locale)
        self.listeners.add(listener)
        started = time.monotonic()
        try:
            yield "retry: 2000\n\n"
            while time.monotonic() - started < MAX_STREAM_S:
                try:
                    item = await asyncio.wait_for(listener.queue.get(), timeout=1.0)
                except TimeoutError:
                    if await is_disconnected():
                        return
                    if int(time.monotonic() - started) % int(HEARTBEAT_S) == 0:
                        yield ": keep-alive\n\n"
                    continue
                yield f"event: {item['type']}\ndata: {json.dumps(item, default=str)}\n\n"
        finally:
            self.listeners.discard(listener)
