"""Auth callout responder: checks device secrets on $SYS.REQ.USER.AUTH and issues per-device user JWTs."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import logging
import re
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from ecohub.connect.nats import jwt
from ecohub.connect.nats.config import DEVICE_ACCOUNT
from ecohub.errors import TooManyRequests
from ecohub.throttle import Throttle

log = logging.getLogger(__name__)

AUTH_SUBJECT = "$SYS.REQ.USER.AUTH"
WORKERS = 4  # requests answered at once, when the verifier awaits (a synchronous one runs them one by one)
DID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # one subject token, one MQTT topic level

Verifier = Callable[[str, str], bool | Awaitable[bool]]
Observer = Callable[[str, str, bool, str], None]  # (did, source address, allowed, reason) of each device CONNECT


def device_permissions(did: str) -> tuple[list[str], list[str]]:
    """(publish allow, subscribe allow) for a device: nothing else is needed for MQTT QoS 0/1/2, retain and will."""
    return [f"ecohub.{did}.up", f"ecohub.{did}.state"], [f"ecohub.{did}.down"]


@dataclass
class CalloutStats:
    """Counters of the responder."""

    allowed: int = 0
    denied: int = 0
    errors: int = 0
    expired: int = 0  # requests that waited past the server's timeout before this responder read them
    seen: list[dict[str, Any]] = field(default_factory=list)


class CalloutResponder:
    """Answers authorization requests: MQTT client id == username == did, password checked by verify(did, secret)."""

    def __init__(
        self,
        issuer_seed: bytes,
        verify: Verifier,
        *,
        account: str = DEVICE_ACCOUNT,
        session_ttl: float | None = None,
        keep_requests: bool = False,
        failures: dict[str, Throttle] | None = None,
        observe: Observer | None = None,
    ) -> None:
        self.kp = jwt.keypair(issuer_seed)
        self.issuer = jwt.public_key(self.kp)
        self.verify = verify
        self.account = account
        self.session_ttl = session_ttl
        self.keep_requests = keep_requests
        # wrong secrets per device id and per source address: over the limit a CONNECT is refused unchecked
        self.failures = failures or {}
        self.observe = observe  # told every decision about a well-formed device id (the security audit keeps them)
        self.stats = CalloutStats()
        self._expired_logged = -1e9
        self._sub: Subscription | None = None
        self._pending: collections.deque[Msg] = collections.deque()
        self._arrived = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []

    async def start(self, nc: NATS, queue: str = "ecohub-auth") -> None:
        """Subscribe to the callout subject (queue group, so several responders share the load)."""
        self._pending.clear()
        self._workers = [asyncio.create_task(self._work(), name=f"auth-callout-{i}") for i in range(WORKERS)]
        self._sub = await nc.subscribe(AUTH_SUBJECT, queue=queue, cb=self._on_arrival)

    async def stop(self) -> None:
        """Unsubscribe; the requests not answered yet are left to the server's timeout."""
        if self._sub is not None:
            await self._sub.unsubscribe()
            self._sub = None
        for task in self._workers:
            task.cancel()
        for task in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._workers = []

    async def _on_arrival(self, msg: Msg) -> None:
        """Only queue it: the workers take the newest first (see `_work`)."""
        self._pending.append(msg)
        self._arrived.set()

    async def _work(self) -> None:
        """Answer queued requests, newest first.

        In a reconnect storm more requests arrive than one process can answer in the server's window. Taken oldest
        first, every answer comes after the server gave up (it refuses the device with CONNACK 5 and the device
        comes back as one more request): 14,108 of them in one 10,000-device campaign. Taken newest first, those
        that can still be admitted are, and the old ones expire cheaply (their `exp` is read before any signature
        work)."""
        while True:
            if not self._pending:
                self._arrived.clear()
                await self._arrived.wait()
                continue
            try:
                await self._on_request(self._pending.pop())
            except Exception:  # the reply could not be sent (connection closing): the server times it out
                self.stats.errors += 1
                log.warning("auth callout answer not sent", exc_info=True)

    async def _check(self, did: str, secret: str) -> bool:
        """Run the verifier (sync or async)."""
        result = self.verify(did, secret)
        if inspect.isawaitable(result):
            result = await result
        return bool(result)

    async def decide(self, request: dict[str, Any]) -> tuple[str, str]:
        """(user JWT, '') when allowed, ('', reason) when not, for decoded request claims."""
        nats = request.get("nats", {})
        user_nkey = nats.get("user_nkey", "")
        opts = nats.get("connect_opts", {})
        info = nats.get("client_info", {})
        did, secret = opts.get("user", ""), opts.get("pass", "")
        if info.get("type") != "mqtt":
            return "", "devices connect over MQTT only"
        if not DID_RE.match(did):
            return "", "bad device id"
        if info.get("mqtt_id") != did:
            return "", "MQTT client id must equal the username"
        host = str(info.get("host", ""))
        keys = {"did": did, "host": host}
        if not all(limit.allows(kind, keys[kind]) for kind, limit in self.failures.items()):
            return self._observed(did, host, "", "too many failed connects: back off")
        if not secret or not await self._check(did, secret):
            for kind, limit in self.failures.items():
                with contextlib.suppress(TooManyRequests):
                    limit.hit(kind, keys[kind])
            return self._observed(did, host, "", "bad credentials")
        pub, sub = device_permissions(did)
        claims = jwt.user_claims(
            user_nkey,
            account=self.account,
            name=did,
            pub_allow=pub,
            sub_allow=sub,
            connection_types=["MQTT"],
            expires_in=self.session_ttl,
        )
        return self._observed(did, host, jwt.encode(claims, self.kp), "")

    def _observed(self, did: str, host: str, user_jwt: str, reason: str) -> tuple[str, str]:
        if self.observe is not None:
            try:
                self.observe(did, host, bool(user_jwt), reason)
            except Exception:  # recording must never decide a CONNECT
                log.exception("auth callout observer failed")
        return user_jwt, reason

    async def _on_request(self, msg: Msg) -> None:
        """Decode, decide, reply with a signed authorization response."""
        try:
            request = jwt.decode(msg.data.decode())
            nats = request.get("nats", {})
            server_id = nats.get("server_id", {}).get("id", "")
            if request.get("iss") != server_id:
                raise jwt.JWTError("request not signed by the server it names")
            if self.keep_requests:
                self.stats.seen.append(request)
            user_jwt, reason = await self.decide(request)
        except jwt.JWTError as err:
            self.stats.errors += 1
            if str(err) != "expired":
                log.warning("auth callout request refused: %s", err)
                return
            # the server gave up on it already (the device retries): counted, logged once in a while, not each time
            self.stats.expired += 1
            if time.monotonic() - self._expired_logged > 10:
                self._expired_logged = time.monotonic()
                log.warning("auth callout: %d requests so far arrived after the server's timeout (this responder "
                            "is behind: CPU, or too few responders for the connect rate)", self.stats.expired)
            return
        except Exception:
            self.stats.errors += 1
            log.exception("auth callout request could not be handled")
            return
        if user_jwt:
            self.stats.allowed += 1
        else:
            self.stats.denied += 1
        claims = jwt.auth_response_claims(nats.get("user_nkey", ""), server_id, user_jwt=user_jwt, error=reason)
        await msg.respond(jwt.encode(claims, self.kp).encode())


async def run_responder(url: str | list[str], user: str, password: str, responder: CalloutResponder) -> NATS:
    """Connect a service client and start the responder on it; returns the connection (close it to stop)."""
    import nats

    servers = url if isinstance(url, list) else [url]
    nc = await nats.connect(
        servers=servers,
        user=user,
        password=password,
        name="ecohub-auth-callout",
        max_reconnect_attempts=-1,
        reconnect_time_wait=0.2,
    )
    await responder.start(nc)
    await nc.flush()
    return nc


class ResponderThread:
    """The responder on a thread of its own, with its own event loop and NATS connection.

    On the hub's loop, callout answers waited behind ingest batches, OTA offers and API requests: in a reconnect
    storm of 10,000 devices they arrived after the server's timeout, the server refused those devices (CONNACK 5)
    and they came back as more requests (42,000 refusals logged in one run). Here an answer waits only for the GIL.
    A synchronous verifier runs on this thread (a database read on a cache miss blocks only this loop)."""

    def __init__(self, urls: list[str], user: str, password: str, responder: CalloutResponder) -> None:
        self.urls, self.user, self.password, self.responder = urls, user, password, responder
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="nats-auth-callout", daemon=True)

    async def start(self) -> None:
        """Start the thread and wait until its responder is subscribed (its connect error, if any, is raised)."""
        self._thread.start()
        await asyncio.wrap_future(self._ready)

    def _run(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            nc = await run_responder(self.urls, self.user, self.password, self.responder)
        except BaseException as err:
            self._ready.set_exception(err)
            return
        self._ready.set_result(None)
        try:
            await self._stopping.wait()
        finally:
            with contextlib.suppress(Exception):
                await self.responder.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.drain(), 5)

    async def stop(self) -> None:
        """Unsubscribe, close the connection and end the thread."""
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended on its own
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread.is_alive():
            await asyncio.to_thread(self._thread.join, 10)
