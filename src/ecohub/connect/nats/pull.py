"""A JetStream pull consumer for ingest: batches arrive while the previous batch is written, acks go out in a loop.

nats-py's `fetch()` awaits each message of a batch through `next_msg()`, which creates two tasks and a uuid per
message, and `Msg.ack()` is a coroutine per message (a task each under `gather`). Here one pull request is kept
outstanding on the durable (`$JS.API.CONSUMER.MSG.NEXT`) with the replies delivered to a callback that only
buffers them, so the next batch fills while the current one is processed and written, and acknowledgements are
plain publishes in one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable, Iterable

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

ACK = b"+ACK"
PROGRESS = b"+WPI"  # "still working on it": resets the message's ack_wait
NAK = b"-NAK"  # "not taken": redeliver now (a stopping worker's unwritten messages)
REQUEST_EXPIRED = "408"  # the request's `expires` passed (the normal end of a pull that was not filled)
EXPIRY_SLACK_S = 0.5  # a request neither filled nor ended by a status after expires + this is taken for lost


def stream_seq(reply: str) -> int:
    """The stream sequence of a JetStream message from its reply subject (what `Msg.metadata` parses, cheaper).

    `$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<ts>.<pending>` (9 tokens), or with
    `<domain>.<account hash>` after `ACK` (11 tokens, 12 with a trailing random token)."""
    tokens = reply.split(".")
    if len(tokens) == 9:
        return int(tokens[5])
    if len(tokens) >= 11 and tokens[0] == "$JS" and tokens[1] == "ACK":
        return int(tokens[7])
    raise ValueError(f"not a JetStream reply subject: {reply[:200]!r}")


async def ack_all(nc: NATS, msgs: Iterable[Msg], payload: bytes = ACK) -> None:
    """Acknowledge (or with PROGRESS, extend) each message: one publish per message, no task per message."""
    publish = nc.publish
    for m in msgs:
        if m.reply:
            await publish(m.reply, payload)


class Puller:
    """One outstanding pull request of `batch` messages on a durable; what it delivers is buffered for `take()`.

    A new request goes out when the previous one ended (filled, expired, or an error status) and fewer than a
    batch are buffered, so at most two batches wait here beyond the one being written: `max_ack_pending` of the
    consumer still bounds what all workers hold. Buffered messages are unacknowledged: the caller keeps them alive
    (`held`) when it cannot write for a while.
    """

    def __init__(self, nc: NATS, *, stream: str, durable: str, batch: int, expires_s: float,
                 api_prefix: str = "$JS.API") -> None:
        self.nc = nc
        self.batch = batch
        self.expires_s = expires_s
        self.subject = f"{api_prefix}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self.inbox = nc.new_inbox()
        self.buffer: deque[Msg] = deque()
        self._remaining = 0  # messages the outstanding request may still deliver (0: none outstanding)
        self._deadline = 0.0  # monotonic time after which the outstanding request is taken for lost
        self._failed = False  # the last request ended with an error status (no consumer, leader change, …)
        self._arrived = asyncio.Event()
        self._sub: Subscription | None = None

    async def __aenter__(self) -> Puller:
        self._sub = await self.nc.subscribe(self.inbox, cb=self._on_msg)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()
            self._sub = None

    @property
    def held(self) -> list[Msg]:
        """Messages delivered and not yet taken (unacknowledged: JetStream redelivers them after ack_wait)."""
        return list(self.buffer)

    async def _on_msg(self, msg: Msg) -> None:
        if msg.reply:
            self.buffer.append(msg)
            self._remaining = max(0, self._remaining - 1)
            if len(self.buffer) != 1 and len(self.buffer) < self.batch and self._remaining:
                return  # wake the taker on the first message, a full batch or the request's end only
        else:  # a status: the request is over (408 expired, 409 max ack pending / leadership change, 503 …)
            status = msg.headers.get("Status") if msg.headers else None
            self._remaining = 0
            self._failed = status != REQUEST_EXPIRED
        self._arrived.set()

    async def _request(self) -> None:
        """Ask for a batch unless a request is outstanding or a batch is buffered already."""
        if self._remaining and time.monotonic() < self._deadline:
            return
        want = self.batch - len(self.buffer)
        if want <= 0:
            return
        if self._failed:  # an error status comes back at once: do not spin on it
            self._failed = False
            await asyncio.sleep(min(0.1, self.expires_s))
        self._remaining = want
        self._deadline = time.monotonic() + self.expires_s + EXPIRY_SLACK_S
        body = json.dumps({"batch": want, "expires": int(self.expires_s * 1e9)}).encode()
        await self.nc.publish(self.subject, body, reply=self.inbox)

    async def _wait(self, seconds: float, done: Callable[[], bool]) -> None:
        """Until `done()` after a wake-up from `_on_msg`, or `seconds` (no task per wait, unlike `wait_for`)."""
        self._arrived.clear()
        if done():  # checked after the clear: a message that came during the caller's last await is not missed
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._arrived.wait()

    async def take(self, *, linger_s: float, wait_s: float) -> list[Msg]:
        """Up to a batch of messages: waits up to `wait_s` for a first one, then up to `linger_s` for a fuller
        batch while a request is still filling; [] when nothing arrived. Asks for the next batch before returning."""
        end = time.monotonic() + wait_s
        while not self.buffer:
            await self._request()
            left = end - time.monotonic()
            if left <= 0:
                return []
            await self._wait(min(left, self.expires_s + EXPIRY_SLACK_S), lambda: bool(self.buffer))
        if len(self.buffer) < self.batch and self._remaining:
            # a few ms more gather a fuller batch under load; an idle hub answers at once
            end = time.monotonic() + linger_s
            while len(self.buffer) < self.batch and self._remaining and (left := end - time.monotonic()) > 0:
                await self._wait(left, lambda: len(self.buffer) >= self.batch or not self._remaining)
        n = min(self.batch, len(self.buffer))
        out = [self.buffer.popleft() for _ in range(n)]
        await self._request()  # the next batch arrives while this one is processed and written
        return out
