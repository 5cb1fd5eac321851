"""The suite's own MQTT client: records everything units send (the evidence) and sends raw requests."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv311

from ecohub.certify.target import MqttAccess
from ecohub.errors import ErrorCode, Unavailable
from ecohub.protocol import Channel, Topic, parse_topic
from ecohub.protocol.messages import DownMessage, encode

EVIDENCE_PAYLOAD_CHARS = 300


class OneShotClient(Client):  # type: ignore[misc]
    """A gmqtt client that never reconnects by itself. gmqtt reconnects a dropped client 6 s later even when
    `disconnect()` was called meanwhile (and `reconnect_retries: 0` still allows one try): a suite client that held a
    unit's session would come back and drop the unit a second time."""

    async def reconnect(self, delay: bool = False) -> None:
        return None


@dataclass(frozen=True, slots=True)
class Seen:
    """One message a unit sent (or the broker retained for it), when and how big."""

    at: float  # time.monotonic()
    did: str
    channel: str
    size: int
    retained: bool
    body: Any  # decoded JSON, or None when it is not JSON

    @property
    def method(self) -> str | None:
        return self.body.get("method") if isinstance(self.body, dict) else None

    @property
    def msg_id(self) -> Any:
        return self.body.get("id") if isinstance(self.body, dict) else None

    @property
    def is_reply(self) -> bool:
        return isinstance(self.body, dict) and "method" not in self.body and "id" in self.body

    def evidence(self, t0: float) -> dict[str, Any]:
        """A short JSON-able record for the report."""
        text = json.dumps(self.body, separators=(",", ":"), default=str)
        if len(text) > EVIDENCE_PAYLOAD_CHARS:
            text = text[:EVIDENCE_PAYLOAD_CHARS] + "…"
        return {"t_ms": round((self.at - t0) * 1000), "did": self.did, "channel": self.channel, "size": self.size,
                "retained": self.retained, "payload": text}


class Probe:
    """A service-user MQTT client subscribed to the units' up and state topics; `async with Probe(...)`."""

    def __init__(self, endpoint: MqttAccess, *, dids: list[str], client_id: str) -> None:
        self.endpoint = endpoint
        self.dids = dids
        self.seen: list[Seen] = []
        self._changed = asyncio.Event()
        self._ids = itertools.count(8_000_000_000_000 + int(time.time()) % 1_000_000 * 1000)
        self.client = Client(client_id, clean_session=True)
        self.client.set_auth_credentials(endpoint.username, endpoint.password)
        self.client.set_config({"reconnect_retries": -1, "reconnect_delay": 1})
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.connects = 0

    def _topics(self) -> list[str]:
        # `down` too: the evidence shows every request; and while the probe holds a subscription on each unit topic,
        # units (re)connecting never add or remove a broker subscription key
        return [t for did in self.dids for t in (Topic.up(did), Topic.state(did), Topic.down(did))]

    def _on_connect(self, *_: Any) -> None:
        self.connects += 1
        if self.connects > 1:  # a restarted broker lost our subscriptions (gmqtt does not subscribe again)
            for topic in self._topics():
                self.client.subscribe(topic, qos=1)

    async def __aenter__(self) -> Probe:
        try:
            await self.client.connect(self.endpoint.host, self.endpoint.port, version=MQTTv311, keepalive=30)
        except Exception as err:
            raise Unavailable(f"the certification probe cannot reach the broker at {self.endpoint.host}:"
                              f"{self.endpoint.port}: {err}", code=ErrorCode.BROKER_UNAVAILABLE) from err
        for topic in self._topics():
            self.client.subscribe(topic, qos=1)
        await asyncio.sleep(0.1)  # let the SUBACKs come back before the device starts
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.client.disconnect(), timeout=3)

    def _on_message(self, _client: Any, topic: str, payload: bytes, _qos: int, props: Any) -> int:
        parsed = parse_topic(topic)
        if parsed is None:
            return 0
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = None
        retained = bool((props or {}).get("retain", 0))
        self.seen.append(Seen(time.monotonic(), parsed.did, str(parsed.channel), len(payload), retained, body))
        self._changed.set()
        return 0

    def messages(self, did: str, *, channel: Channel | None = None, since: float = 0.0) -> list[Seen]:
        """What one unit sent since a monotonic time, oldest first."""
        return [s for s in self.seen if s.did == did and s.at >= since and (channel is None or s.channel == channel)]

    async def wait_for(self, match: Callable[[Seen], bool], *, within: float, since: float = 0.0) -> Seen | None:
        """The first message since `since` that matches, waiting up to `within` seconds; None when none came."""
        checked = 0
        found: list[Seen] = []

        def done() -> bool:  # scans only what arrived since the last look
            nonlocal checked
            recent, checked = self.seen[checked:], len(self.seen)
            found.extend(s for s in recent if s.at >= since and match(s))
            return bool(found)

        return found[0] if await self.until(done, within=within) else None

    async def until(self, done: Callable[[], bool], *, within: float) -> bool:
        """Re-evaluate `done` whenever a message arrives, for up to `within` seconds; its last value."""
        deadline = time.monotonic() + within
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=left)
        return True

    async def wait_online(self, did: str, online: bool, *, within: float, since: float = 0.0) -> Seen | None:
        """The state message saying online/offline."""
        return await self.wait_for(lambda s: s.did == did and s.channel == Channel.STATE
                                   and isinstance(s.body, dict) and s.body.get("online") is online,
                                   within=within, since=since)

    async def request(self, did: str, method: str, params: Any, *, within: float) -> tuple[Seen | None, float]:
        """Publish a raw request on the unit's down topic (bypassing the API's validation); (reply, seconds)."""
        msg_id = next(self._ids)
        start = time.monotonic()
        self.client.publish(Topic.down(did), encode(DownMessage(msg_id, method, params)), qos=1)
        reply = await self.wait_for(lambda s: s.did == did and s.is_reply and s.msg_id == msg_id,
                                    within=within, since=start)
        return reply, time.monotonic() - start


async def retained_state(endpoint: MqttAccess, did: str, *, client_id: str, within: float) -> Seen | None:
    """What a fresh subscriber gets on the unit's state topic (the retained message), if anything."""
    got: list[Seen] = []
    arrived = asyncio.Event()

    def on_message(_c: Any, topic: str, payload: bytes, _q: int, props: Any) -> int:
        try:
            body = json.loads(payload) if payload else None
        except ValueError:
            body = None
        got.append(Seen(time.monotonic(), did, "state", len(payload), bool((props or {}).get("retain", 0)), body))
        arrived.set()
        return 0

    client = Client(client_id, clean_session=True)
    client.set_auth_credentials(endpoint.username, endpoint.password)
    client.on_message = on_message
    await client.connect(endpoint.host, endpoint.port, version=MQTTv311, keepalive=30)
    try:
        client.subscribe(Topic.state(did), qos=1)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(arrived.wait(), timeout=within)
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), timeout=3)
    return got[0] if got else None


SUBACK_GRACE_S = 5.0


async def impersonate(endpoint: MqttAccess, did: str, secret: str, other: str, *,
                      hold_s: float) -> dict[str, Any]:
    """Connect as unit `did` (taking its session over, which drops the device's connection), try the other
    unit's topics, and leave; returns what the broker did."""
    granted: list[Any] = []
    got: list[str] = []
    subacked = asyncio.Event()

    def on_subscribe(_c: Any, _mid: int, qos: Any, _props: Any) -> None:
        granted.extend(qos)
        subacked.set()

    # the same client id takes the live session over (MQTT 3.1.1); when the unit takes it back during the hold, this
    # client must stay gone
    client = OneShotClient(did, clean_session=False)
    client.set_auth_credentials(did, secret)
    client.on_subscribe = on_subscribe

    def on_message(_c: Any, topic: str, _p: bytes, _q: int, _pr: Any) -> int:
        got.append(topic)
        return 0

    client.on_message = on_message
    start = time.monotonic()
    try:
        await client.connect(endpoint.host, endpoint.port, version=MQTTv311, keepalive=30)
    except Exception as err:
        return {"connected": False, "error": str(err), "at": start}
    try:
        client.subscribe(Topic.down(other), qos=1)
        client.publish(Topic.up(other), encode({"id": 1, "method": "properties_changed", "params": []}), qos=1)
        with contextlib.suppress(TimeoutError):
            # a loaded broker can be slow to answer; "no SUBACK yet" must not be read as "granted"
            await asyncio.wait_for(subacked.wait(), timeout=hold_s + SUBACK_GRACE_S)
        await asyncio.sleep(max(0.0, hold_s - (time.monotonic() - start)))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(client.disconnect(), timeout=3)
    return {"connected": True, "at": start, "until": time.monotonic(), "suback": [int(q) for q in granted],
            "received": got}
