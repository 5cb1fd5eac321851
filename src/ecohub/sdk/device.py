"""The device SDK: what partner firmware uses to speak the ecohub protocol (imports only protocol and spec)."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import msgspec
import tenacity
from gmqtt import Client, Message
from gmqtt.mqtt.constants import MQTTv50, MQTTv311
from gmqtt.storage import PersistentStorage

from ecohub.protocol import Code, Method, Topic
from ecohub.protocol.messages import (
    ActionParams,
    DecodeError,
    DownMessage,
    PropertyGet,
    PropertyValue,
    decode_down,
    encode,
)
from ecohub.sdk.ota import OtaHandler, load_trust
from ecohub.spec import CompiledSpec, Spec, compile_spec, parse_spec

log = logging.getLogger(__name__)
SUBACK_WAIT_S = 10.0  # how long connect() waits for the broker to grant the subscription to `down`
# a dropped device reconnects after a random wait of up to 0.5 s, 1 s, 2 s, … 120 s (exponential, full jitter): a
# fleet the broker dropped at once comes back spread out instead of in one storm of CONNECTs
RECONNECT_FIRST_S = (0.5, 2.5)  # the first try: a random moment in this window after the drop
RECONNECT_BASE_S = 0.5
RECONNECT_CAP_S = 120.0
BACKLOG_MAX = 1000  # `up` messages kept while reconnecting, sent in order once back (the oldest go first when full)
CONNECT_TIMEOUT_S = 30.0  # a CONNECT the broker neither accepts nor refuses (overloaded, dropped) is given up

SetHandler = Callable[[int, int, Any], Awaitable[int] | int]
ActionHandler = Callable[[int, int, dict[int, Any]], Awaitable[tuple[int, dict[int, Any]]] | tuple[int, dict[int, Any]]]


class DeviceError(Exception):
    """The device could not connect or publish."""


class _Client(Client):
    """gmqtt's client without its own reconnect: the Device reconnects (jittered backoff, a refused CONNACK retried,
    announced again). While connecting, gmqtt's reconnect still does its protocol downgrade (MQTT 5 refused)."""

    established = False
    lost = False  # its connection went down (the Device never reuses a client)

    async def reconnect(self, delay: bool = False) -> None:
        if self.established:
            return
        if self.lost or self._package_handler.has_error:
            # closed before its CONNACK (NATS holds a client id that was just taken over for 1 s, then closes it) or
            # refused: gmqtt would try again 6 s later, on a persistent session, as a second client with this id
            # that takes the Device's next connection over; the attempt ends here and the Device retries
            self._connack_received.set()
            return
        await super().reconnect(delay=delay)  # MQTT 5 refused (CONNACK 1): gmqtt's downgrade to 3.1.1


class _Outbox(PersistentStorage):  # type: ignore[misc]
    """gmqtt's store of the QoS 1 publishes the broker has not acknowledged yet, which also keeps what each one said.

    A reconnect is a new client with a clean session, so gmqtt would forget them: the Device sends them again on the
    new link (the cloud counts a redelivery of the same message as a duplicate, by device, id and content)."""

    def __init__(self) -> None:
        super().__init__()
        self.said: dict[int, tuple[str, bytes, int]] = {}
        self.next: tuple[str, bytes, int] | None = None  # set just before a publish; its packet id comes in the push

    def push_message(self, mid: int, raw_package: bytes) -> None:
        super().push_message(mid, raw_package)
        if self.next is not None:
            self.said[mid] = self.next
            self.next = None

    def remove_message_by_mid(self, mid: int) -> None:  # the PUBACK
        self.said.pop(mid, None)
        super().remove_message_by_mid(mid)

    def clear(self) -> None:
        self.said.clear()
        super().clear()

    def unacknowledged(self) -> list[tuple[str, bytes, int]]:
        """What was published and never acknowledged, in the order it was published."""
        return list(self.said.values())


class Device:
    """One device: connects with its did/secret, keeps its properties, reports, answers commands.

    Use as `async with Device(...) as dev:`; the last will marks it offline when it drops.
    """

    def __init__(self, *, did: str, secret: str, spec: Spec | dict[str, Any], host: str = "127.0.0.1",
                 port: int = 1883, mqtt_version: int = 4, keepalive: int = 30, first_id: int | None = None,
                 model: str | None = None, firmware_version: str | None = None,
                 ota_trust: Mapping[str, Any] | None = None, reconnect: bool = True) -> None:
        self.did = did
        self.reconnect = reconnect  # reconnect by itself when the broker drops it (with backoff and jitter)
        self.reconnects = 0
        self.model = model
        self.firmware_version = firmware_version  # said in the online state; the cloud's twin shows it
        self.secret = secret
        self.spec = spec if isinstance(spec, Spec) else parse_spec(spec)
        self.compiled: CompiledSpec = compile_spec(self.spec)
        self.host = host
        self.port = port
        self.mqtt_version = mqtt_version
        self.keepalive = keepalive
        # ids increase across restarts: start from the clock unless told otherwise (the cloud dedups on them)
        self._next_id = first_id if first_id is not None else time.time_ns() // 1_000_000
        self.values: dict[tuple[int, int], Any] = {}
        self.on_set: SetHandler | None = None
        self.on_action: ActionHandler | None = None
        self.received: list[DownMessage] = []
        self.connected = asyncio.Event()
        self._client: Client | None = None
        self._opening: Client | None = None  # the client `_open` is subscribing and announcing on
        self._outbox = _Outbox()  # the current client's unacknowledged publishes
        self._acked: dict[int, asyncio.Future[None]] = {}
        self._down_mid: int | None = None
        self._subacked = asyncio.Event()
        self.subscription_refused = False
        self._wanted = False  # connected by the caller and not disconnected since: a drop is reconnected
        self._backlog: collections.deque[tuple[str, bytes, int]] = collections.deque(maxlen=BACKLOG_MAX)
        self._reconnecting: asyncio.Task[None] | None = None
        # firmware updates: an image installs only when the partner's and the brand's pinned keys (`ota_trust`)
        # both verify it; without pinned keys every offer is refused with -4023
        self.ota: OtaHandler = self.make_ota(load_trust(ota_trust or {}))

    def make_ota(self, trust: dict[str, Any]) -> OtaHandler:
        """The update handler (the simulator gives its faults a subclass)."""
        return OtaHandler(self, trust=trust)

    def next_id(self) -> int:
        """The next message id (strictly increasing)."""
        self._next_id += 1
        return self._next_id

    def _make_client(self, outbox: _Outbox) -> _Client:
        will = Message(Topic.state(self.did), b'{"online":false}', qos=1, retain=True)
        client = _Client(self.did, clean_session=True, will_message=will, persistent_storage=outbox)
        client.set_auth_credentials(self.did, self.secret)
        client.on_message = self._on_message
        client.on_connect = lambda *_: self.connected.set()
        client.on_disconnect = self._on_dropped
        client.on_subscribe = self._on_subscribe
        # the Device reconnects itself (below): gmqtt's own retry comes at a fixed delay, in step for a whole fleet,
        # takes a refused CONNACK (which a loaded auth service also gives) as final, and re-announces nothing
        client.set_config({"reconnect_retries": 0})
        return client

    def _on_dropped(self, client: Any, *_: Any) -> None:
        client.lost = True
        if client is not (self._opening or self._client):  # given up on: a failed attempt, the link replaced
            return
        self.connected.clear()
        if client is self._opening:
            self._subacked.set()  # `_open` stops waiting for the SUBACK and sees the drop
            return
        if self.reconnect and self._wanted and (self._reconnecting is None or self._reconnecting.done()):
            self._reconnecting = asyncio.ensure_future(self._reconnect())

    async def _reconnect(self) -> None:
        """Connect again until it works or the device is disconnected; then `on_reconnected`."""
        # the dropped client stays `_client` until a new one is in (a publish meanwhile is lost, as on a dead link)
        dropped = self._client
        if dropped is not None:  # its socket is gone: do not wait long on it
            with contextlib.suppress(Exception):
                await asyncio.wait_for(dropped.disconnect(), timeout=1.0)
        retrying = tenacity.AsyncRetrying(
            wait=tenacity.wait_random_exponential(multiplier=RECONNECT_BASE_S, max=RECONNECT_CAP_S),
            retry=tenacity.retry_if_exception_type(DeviceError), reraise=True)
        await asyncio.sleep(random.uniform(*RECONNECT_FIRST_S))
        unacknowledged = self._outbox.unacknowledged()  # said on the link that dropped, and no PUBACK came
        try:
            async for attempt in retrying:
                with attempt:
                    if not self._wanted:
                        return
                    await self._open()
        except DeviceError:
            return
        except asyncio.CancelledError:
            raise
        self.reconnects += 1
        for topic, payload, qos in unacknowledged:  # first what the broker may never have got, then the backlog
            self._send(topic, payload, qos)
        while self._backlog and self._client is not None:  # what the device said while it was away, in order
            self._send(*self._backlog.popleft())
        self.on_reconnected()

    def on_reconnected(self) -> None:
        """Called after a reconnect (subscribed to `down` and announced online again)."""

    def _on_subscribe(self, _client: Any, mid: int, granted: Any, _props: Any) -> None:
        if mid != self._down_mid:
            return
        # SUBACK 0x80: the broker took the connection but will deliver no command (a wrong ACL, a full broker)
        self.subscription_refused = any(int(q) >= 0x80 for q in granted)
        if self.subscription_refused:
            log.error("%s: the broker refused the subscription to its commands (SUBACK 0x80)", self.did)
        self._subacked.set()

    async def connect(self) -> None:
        """Connect, subscribe to `down`, publish the retained online state; from then on a dropped connection is
        reconnected (unless `reconnect` is False) until `disconnect()`."""
        await self._open()
        self._wanted = True

    async def _open(self) -> None:
        outbox = _Outbox()
        client = self._make_client(outbox)
        self._opening = client  # from now on only this client's drop counts (the dropped link's may come late)
        try:
            await self._open_on(client, outbox)
        finally:
            self._opening = None
        if client.lost:  # its drop came while this ran, so nothing else reconnects it: the caller tries again
            raise DeviceError(f"{self.did}: the broker dropped the connection while it subscribed and announced")
        if self.subscription_refused:
            raise DeviceError(f"{self.did}: connected, but the broker refused the subscription to its commands "
                              "(SUBACK 0x80): it would never receive a command")

    async def _open_on(self, client: _Client, outbox: _Outbox) -> None:
        version = MQTTv50 if self.mqtt_version == 5 else MQTTv311
        try:
            await asyncio.wait_for(client.connect(self.host, self.port, version=version, keepalive=self.keepalive),
                                   timeout=CONNECT_TIMEOUT_S)
            if client.lost:
                raise DeviceError("the broker closed the connection before accepting it")
            client.established = True
        except Exception as err:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), timeout=1.0)
            raise DeviceError(f"{self.did} could not connect to {self.host}:{self.port}: {err}") from err
        self._client, self._outbox = client, outbox
        self._announce()
        try:
            await asyncio.wait_for(self._subacked.wait(), timeout=SUBACK_WAIT_S)
        except TimeoutError:
            raise DeviceError(f"{self.did}: the broker did not answer the subscription to its commands") from None

    def _announce(self) -> None:
        """Subscribe to `down` (a clean session starts with none), then say online (retained)."""
        assert self._client is not None
        self._subacked.clear()
        # QoS 0: the cloud sends requests at QoS 0 (it retries and redelivers desired state itself); a QoS 1
        # subscription would make the broker keep one JetStream consumer per device, and removing one (every
        # clean-session reconnect) held NATS's message stream for seconds at 10,000 devices (docs/protocol.md)
        self._down_mid = self._client.subscribe(Topic.down(self.did), qos=0)
        self.announce_state()

    def announce_state(self) -> None:
        """Publish the retained online state, with the firmware version the device runs."""
        assert self._client is not None
        state: dict[str, Any] = {"online": True}
        if self.firmware_version is not None:
            state["firmware_version"] = self.firmware_version
        self._client.publish(Topic.state(self.did), encode(state), qos=1, retain=True)

    async def disconnect(self, *, graceful: bool = True) -> None:
        """Go offline: graceful publishes the offline state first; otherwise the will does it."""
        self._wanted = False
        if self._reconnecting is not None and not self._reconnecting.done():
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reconnecting
        if self._client is None:
            return
        if graceful:
            self._client.publish(Topic.state(self.did), b'{"online":false}', qos=1, retain=True)
            await asyncio.sleep(0.05)
            with contextlib.suppress(TimeoutError):  # a link that died meanwhile has nobody to say goodbye to
                await asyncio.wait_for(self._client.disconnect(), timeout=3.0)
        else:
            transport = getattr(self._client._connection, "_transport", None)
            if transport is not None:
                transport.abort()  # drop the TCP connection without DISCONNECT: the broker sends the will
            self._client._connection = None
        self._client = None

    async def __aenter__(self) -> Device:
        await self.connect()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.disconnect()

    def publish_raw(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Publish anything (tests and fault injection use this to send what firmware should not)."""
        if self._client is None:
            raise DeviceError(f"{self.did} is not connected")
        if self._wanted and self.reconnect and not self.connected.is_set() and not retain:
            self._backlog.append((topic, payload, qos))  # reconnecting: sent once back (retained state is re-announced)
            return
        self._send(topic, payload, qos, retain)

    def _send(self, topic: str, payload: bytes, qos: int, retain: bool = False) -> None:
        assert self._client is not None
        if qos > 0 and not retain:  # kept until its PUBACK, to send again after a reconnect (retained state is
            self._outbox.next = (topic, payload, qos)  # announced afresh)
        self._client.publish(topic, payload, qos=qos, retain=retain)
        self._outbox.next = None

    def report(self, values: dict[tuple[int, int], Any], *, ts: int | None = None, validate: bool = True) -> int:
        """Publish properties_changed for the given (siid, piid) → value; returns the message id."""
        params = []
        for (siid, piid), value in values.items():
            if validate:
                problem = self.compiled.check_value(siid, piid, value)
                if problem is not None:
                    raise ValueError(f"{siid}.{piid}: {problem.message}")
            self.values[(siid, piid)] = value
            params.append(PropertyValue(siid, piid, value))
        msg_id = self.next_id()
        body: dict[str, Any] = {"id": msg_id, "method": Method.PROPERTIES_CHANGED, "params": params}
        if ts is not None:
            body["ts"] = ts
        self.publish_raw(Topic.up(self.did), encode(body))
        return msg_id

    def emit_event(self, siid: int, eiid: int, arguments: dict[int, Any]) -> int:
        """Publish event_occured with arguments piid → value; returns the message id."""
        msg_id = self.next_id()
        body = {"id": msg_id, "method": Method.EVENT_OCCURED,
                "params": {"siid": siid, "eiid": eiid,
                           "arguments": [{"piid": p, "value": v} for p, v in arguments.items()]}}
        self.publish_raw(Topic.up(self.did), encode(body))
        return msg_id

    def reply(self, request_id: int, *, result: Any = None, error: tuple[int, str] | None = None) -> None:
        """Answer a cloud request."""
        body: dict[str, Any] = {"id": request_id}
        if error is not None:
            body["error"] = {"code": error[0], "message": error[1]}
        else:
            body["result"] = result
        self.publish_raw(Topic.up(self.did), encode(body))

    async def _on_message(self, _client: Any, topic: str, payload: bytes, _qos: int, _props: Any) -> int:
        try:
            request = decode_down(payload)
        except DecodeError as err:
            log.warning("%s got an undecodable request: %s", self.did, err)
            return 0
        self.received.append(request)
        try:
            await self.handle(request)
        except Exception as err:  # a handler bug must not kill the device's connection
            log.exception("%s failed handling %s", self.did, request.method)
            self.reply(request.id, error=(Code.INTERNAL_ERROR, str(err)))
        return 0

    async def handle(self, request: DownMessage) -> None:
        """Answer set/get_properties and actions from the spec, the stored values and the handlers."""
        results: list[dict[str, Any]] = []
        if request.method == Method.SET_PROPERTIES:
            items = msgspec.convert(request.params, list[PropertyValue])
            changed: dict[tuple[int, int], Any] = {}
            for item in items:
                code = await self._set(item)
                results.append({"siid": item.siid, "piid": item.piid, "code": code})
                if code == Code.OK:
                    changed[(item.siid, item.piid)] = item.value
            self.reply(request.id, result=results)
            notify = {k: v for k, v in changed.items() if self.compiled.properties[k].notifies}
            if notify:
                self.report(notify)
        elif request.method == Method.GET_PROPERTIES:
            gets = msgspec.convert(request.params, list[PropertyGet])
            results = []
            for g in gets:
                cp = self.compiled.properties.get((g.siid, g.piid))
                if cp is None:
                    results.append({"siid": g.siid, "piid": g.piid, "code": Code.PROPERTY_NOT_FOUND})
                elif not cp.readable:
                    results.append({"siid": g.siid, "piid": g.piid, "code": Code.PROPERTY_NOT_READABLE})
                else:
                    value = self.values.get((g.siid, g.piid))
                    results.append({"siid": g.siid, "piid": g.piid, "code": Code.OK, "value": value})
            self.reply(request.id, result=results)
        elif request.method == Method.ACTION:
            params = msgspec.convert(request.params, ActionParams)
            action = self.compiled.actions.get((params.siid, params.aiid))
            if action is None:
                self.reply(request.id, error=(Code.ACTION_NOT_FOUND, "action not found"))
                return
            args = {a.piid: a.value for a in params.in_}
            code, out = 0, {}
            if self.on_action is not None:
                res = self.on_action(params.siid, params.aiid, args)
                code, out = await res if asyncio.iscoroutine(res) else res  # type: ignore[misc]
            else:
                out = {p: self.values.get((params.siid, p)) for p in action.out}
            self.reply(request.id, result={"code": code, "out": [{"piid": p, "value": v} for p, v in out.items()]})
        elif request.method == Method.OTA_UPDATE:
            self.ota.start(request.id, request.params)
        else:
            self.reply(request.id, error=(Code.METHOD_NOT_FOUND, f"unknown method {request.method}"))

    async def _set(self, item: PropertyValue) -> int:
        cp = self.compiled.properties.get((item.siid, item.piid))
        if cp is None:
            return Code.PROPERTY_NOT_FOUND
        if not cp.writable:
            return Code.PROPERTY_NOT_WRITABLE
        problem = cp.check(item.value)
        if problem is not None:
            return Code.WRONG_TYPE if problem.kind == "wrong_type" else Code.VALUE_OUT_OF_RANGE
        if self.on_set is not None:
            res = self.on_set(item.siid, item.piid, item.value)
            code = await res if asyncio.iscoroutine(res) else res
            if code != Code.OK:
                return int(code)  # type: ignore[arg-type]
        self.values[(item.siid, item.piid)] = item.value
        return Code.OK
