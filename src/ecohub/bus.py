"""The in-process domain event bus: events are dispatched after commit; a failing handler is recorded."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None] | None]


@dataclass(frozen=True, slots=True)
class HandlerFailure:
    """A handler that raised: which one, on which event, and why."""

    handler: str
    event: str
    error: str


class EventBus:
    """Publish/subscribe by event type; async handlers run as named tasks on the running loop."""

    def __init__(self) -> None:
        self._handlers: dict[type, list[Handler]] = defaultdict(list)
        self.failures: deque[HandlerFailure] = deque(maxlen=1000)
        self.dispatched = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None  # where async handlers run when published off-loop
        self._resolved: dict[type, list[Handler]] = {}  # handlers per concrete event type, cleared on (un)subscribe

    def subscribe(self, event_type: type, handler: Handler) -> None:
        """Call `handler(event)` for every published event of `event_type` (or a subclass)."""
        with contextlib.suppress(RuntimeError):
            self._loop = asyncio.get_running_loop()
        self._handlers[event_type].append(handler)
        self._resolved.clear()

    def unsubscribe(self, event_type: type, handler: Handler) -> None:
        """Stop calling `handler` for `event_type`."""
        if handler in self._handlers.get(event_type, []):
            self._handlers[event_type].remove(handler)
            self._resolved.clear()

    def publish(self, events: Iterable[Any]) -> None:
        """Dispatch events (call only after the transaction that produced them committed)."""
        for event in events:
            handlers = self._resolved.get(type(event))
            if handlers is None:  # the handlers of this type in subscription order (ingest publishes thousands/s)
                handlers = [h for event_type, hs in self._handlers.items() if issubclass(type(event), event_type)
                            for h in hs]
                self._resolved[type(event)] = handlers
            for handler in handlers:
                self._call(handler, event)
            self.dispatched += 1

    def _call(self, handler: Handler, event: Any) -> None:
        try:
            result = handler(event)
        except Exception as err:
            self._record(handler, event, err)
            return
        if inspect.isawaitable(result):
            try:
                asyncio.get_running_loop()
            except RuntimeError:  # published from a worker thread (a sync route, the CLI): hand it to the loop
                if self._loop is not None and not self._loop.is_closed():
                    asyncio.run_coroutine_threadsafe(self._await(handler, event, result), self._loop)
                else:
                    getattr(result, "close", lambda: None)()  # never awaited: close it, not a warning later
                    self._record(handler, event, RuntimeError("no event loop runs the async handlers"))
                return
            task = asyncio.ensure_future(self._await(handler, event, result))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _await(self, handler: Handler, event: Any, awaitable: Awaitable[None]) -> None:
        try:
            await awaitable
        except Exception as err:
            self._record(handler, event, err)

    def _record(self, handler: Handler, event: Any, err: Exception) -> None:
        name = getattr(handler, "__qualname__", repr(handler))
        failure = HandlerFailure(name, type(event).__name__, f"{type(err).__name__}: {err}")
        self.failures.append(failure)
        log.error("event handler %s failed on %s: %s", name, failure.event, failure.error, exc_info=err)
