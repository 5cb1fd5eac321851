"""Keeps what the auth callout decided: connect events are buffered and written in batches (a reconnect storm of
thousands of devices is a few upserts, not one transaction per CONNECT)."""

from __future__ import annotations

import asyncio
import logging

from ecohub.connect.events import DeviceConnectAttempted
from ecohub.security.service import SecurityService

log = logging.getLogger(__name__)


class ConnectRecorder:
    """Subscribed to `DeviceConnectAttempted` on the bus; `flush()` writes what is buffered."""

    def __init__(self, security: SecurityService, *, gather_s: float = 0.2, max_buffer: int = 100_000) -> None:
        self.security = security
        self.gather_s = gather_s
        self.max_buffer = max_buffer
        self.dropped = 0  # attempts not kept because the buffer was full (the database was away for long)
        self._buffer: list[DeviceConnectAttempted] = []
        self._task: asyncio.Task[None] | None = None

    def on_attempt(self, event: DeviceConnectAttempted) -> None:
        """Buffer one attempt and make sure a flush is coming."""
        if len(self._buffer) >= self.max_buffer:
            self.dropped += 1
            return
        self._buffer.append(event)
        if self._task is None or self._task.done():
            try:
                self._task = asyncio.get_running_loop().create_task(self._flush_soon(), name="security-connects")
            except RuntimeError:  # no loop (a CLI process): write at once
                self._write()

    async def _flush_soon(self) -> None:
        await asyncio.sleep(self.gather_s)
        await self.flush()

    async def flush(self) -> None:
        """Write everything buffered (in a thread: the loop carries the broker's callouts)."""
        while self._buffer:
            if not await asyncio.to_thread(self._write):
                return

    def _write(self) -> bool:
        batch, self._buffer = self._buffer, []
        try:
            self.security.record_connects(batch)
        except Exception:
            log.exception("could not record %d device connects; keeping them for the next flush", len(batch))
            self._buffer[:0] = batch
            return False
        return True
