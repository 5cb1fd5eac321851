"""The embedded broker adapter: amqtt in-process, with ecohub's authentication and topic ACL as plugins."""

from __future__ import annotations

import asyncio
import logging
import secrets
import weakref
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar

from amqtt.adapters import ReaderAdapter, WriterAdapter
from amqtt.broker import Broker
from amqtt.contexts import Action, ListenerConfig
from amqtt.errors import AMQTTError, MQTTError, NoDataError
from amqtt.mqtt.protocol.broker_handler import BrokerProtocolHandler, UnSubscription
from amqtt.mqtt.unsubscribe import UnsubscribePacket
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session
from amqtt.utils import gen_client_id

from ecohub.connect.authority import BrokerAuthority
from ecohub.connect.domain import AclAction

log = logging.getLogger(__name__)

# The plugins are instantiated by amqtt from dotted paths; they find their authority by id here.
_AUTHORITIES: dict[str, BrokerAuthority] = {}
_ACTIONS = {Action.PUBLISH: AclAction.PUBLISH, Action.SUBSCRIBE: AclAction.SUBSCRIBE,
            Action.RECEIVE: AclAction.RECEIVE}


class EcohubAuthPlugin(BaseAuthPlugin):
    """amqtt authentication plugin delegating to the BrokerAuthority."""

    @dataclass
    class Config:
        authority_id: str = ""

    async def authenticate(self, *, session: Session) -> bool | None:
        authority = _AUTHORITIES[self.config.authority_id]
        return authority.authenticate(client_id=session.client_id, username=session.username,
                                      password=session.password, will_topic=session.will_topic)


class EcohubTopicPlugin(BaseTopicPlugin):
    """amqtt topic plugin enforcing the device protocol's ACL."""

    @dataclass
    class Config:
        authority_id: str = ""

    async def topic_filtering(self, *, session: Session | None = None, topic: str | None = None,
                              action: Action | None = None) -> bool | None:
        if session is None or topic is None or action is None:
            return False
        authority = _AUTHORITIES[self.config.authority_id]
        return authority.may(username=session.username, topic=topic, action=_ACTIONS[action])


class RefusedConnect(AMQTTError):
    """A CONNECT whose credentials were refused (answered with CONNACK 5 before any session was touched)."""


class _SnapshotList(list[Any]):
    """A list that iterates over a copy: amqtt awaits inside loops over subscriptions that others mutate."""

    def __iter__(self) -> Any:
        return iter(list.copy(self))


class _SnapshotDict(dict[str, Any]):
    """amqtt's subscription table: iteration sees a snapshot, and every topic's list is a _SnapshotList.

    amqtt 0.12 iterates `_subscriptions` (and each topic's list) with awaits inside (`_run_broadcast` awaits the topic
    filter per subscriber, `_handle_client_session` publishes retained messages per topic) while other tasks add or
    delete subscriptions: "dictionary changed size during iteration" kills the broadcast (the message is dropped), and
    a list shrinking under `for` skips a subscriber. Iterating a copy delivers to the subscribers of the moment.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value if isinstance(value, _SnapshotList) else _SnapshotList(value))

    def __iter__(self) -> Any:
        return iter(list(super().keys()))

    def items(self) -> Any:  # type: ignore[override]
        return list(super().items())

    def values(self) -> Any:  # type: ignore[override]
        return list(super().values())


class _OrderedHandler(BrokerProtocolHandler):
    """SUBSCRIBE and UNSUBSCRIBE in the order they arrived.

    amqtt 0.12 queues them separately and, when both are pending in one turn of its client loop, handles the
    SUBSCRIBE first: UNSUBSCRIBE x followed by SUBSCRIBE x (the hub's command client does this between two commands
    to one device) ends unsubscribed, and every reply is lost. Here both go through the subscription queue.
    """

    async def handle_unsubscribe(self, unsubscribe: UnsubscribePacket) -> None:
        await super().handle_unsubscribe(unsubscribe)
        await self._pending_subscriptions.put(self._pending_unsubscriptions.get_nowait())  # type: ignore[arg-type]


class SafeBroker(Broker):
    """amqtt's Broker with four fixes (tests/connect/test_broker_acl.py reproduces each against plain amqtt 0.12).

    1. amqtt handles a CONNECT in `_initialize_client_session` by deleting the existing session of that client id
       (clean session: its subscriptions are removed) or taking it over (persistent session: the live connection is
       closed), and only afterwards, in `_handle_client_session`, authenticates — anyone who knows a device's id
       could cut the live device off with a wrong password. Here the CONNECT is authenticated first; a refused one
       gets its CONNACK 5 and is closed without ever reaching the session table.
    2. The subscription table iterates over snapshots (_SnapshotDict): no broadcast dies mid-way.
    3. SUBSCRIBE/UNSUBSCRIBE are handled in arrival order (_OrderedHandler).
    4. Retained messages go to a connecting client only for the filters it subscribed to itself.

    These override private methods of amqtt 0.12; `_AMQTT_HOOKS` fails the import if a release renames them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._subscriptions = _SnapshotDict()
        self._authenticated: dict[int, Session] = {}  # sessions authenticated in _initialize_client_session

    async def _initialize_client_session(self, reader: ReaderAdapter, writer: WriterAdapter, remote_address: str,
                                         remote_port: int) -> tuple[BrokerProtocolHandler, Session]:
        try:
            handler, incoming = await _OrderedHandler.init_from_connect(reader, writer, self.plugins_manager)
        except AMQTTError as exc:
            raise AMQTTError(exc) from exc
        except MQTTError as exc:
            await writer.close()
            raise MQTTError(exc) from exc
        except NoDataError as exc:
            raise AMQTTError(exc) from exc
        if incoming.clean_session and not incoming.client_id:
            incoming.client_id = gen_client_id()
        if not await super()._authenticate(incoming, ListenerConfig()):
            incoming.parent = 0
            handler.attach(incoming, reader, writer)
            try:
                await handler.mqtt_connack_authorize(False)
            finally:
                await writer.close()
            raise RefusedConnect(f"{incoming.client_id!r} from {remote_address}:{remote_port}: not authorized")
        # authenticated: only now may an existing session of this client id be replaced or resumed (amqtt's logic)
        session = incoming
        if incoming.clean_session:
            await self._delete_session(incoming.client_id)
            session.parent = 0
        elif incoming.client_id in self._sessions:
            session, _ = self._sessions[incoming.client_id]
            for attr in ("will_flag", "will_message", "will_topic", "will_qos", "keep_alive", "username", "password"):
                setattr(session, attr, getattr(incoming, attr))
            session.parent = 1
        else:
            session.parent = 0
        delay = self.config.get("timeout-disconnect-delay", 0)
        if session.keep_alive > 0 and isinstance(delay, int):
            session.keep_alive += delay
        self._authenticated[id(session)] = session
        return handler, session

    async def _handle_subscription(self, client_session: Session, handler: BrokerProtocolHandler,
                                   subscribe_waiter: asyncio.Future[Any]) -> None:
        if isinstance(subscribe_waiter.result(), UnSubscription):  # queued in order by _OrderedHandler
            await self._handle_unsubscription(client_session, handler, subscribe_waiter)
        else:
            await super()._handle_subscription(client_session, handler, subscribe_waiter)

    async def _authenticate(self, session: Session, listener: ListenerConfig) -> bool:
        if self._authenticated.pop(id(session), None) is session:
            return True  # authenticated a moment ago, before the session table was touched
        return await super()._authenticate(session, listener)

    async def _publish_retained_messages_for_subscription(self, subscription: tuple[str, int],
                                                          session: Session) -> None:
        # amqtt 0.12 calls this, on every CONNECT, for every filter anyone subscribed to: a device would receive
        # the retained state of every device the hub's ingest (ecohub/+/state) listens to. Only its own filters.
        if any(s.client_id == session.client_id for s, _ in self._subscriptions.get(subscription[0], ())):
            await super()._publish_retained_messages_for_subscription(subscription, session)

    def abort_connections(self) -> int:
        """Drop every client's TCP connection at once (as a crashing broker does); returns how many."""
        dropped = 0
        for _session, handler in list(self._sessions.values()):
            stream = getattr(getattr(handler, "writer", None), "_writer", None)
            if stream is not None and not stream.transport.is_closing():
                stream.transport.abort()
                dropped += 1
        return dropped


_AMQTT_HOOKS = ("_initialize_client_session", "_handle_client_session", "_authenticate", "_handle_subscription",
                "_handle_unsubscription", "_publish_retained_messages_for_subscription", "_delete_session")
_missing_hooks = [name for name in _AMQTT_HOOKS if not hasattr(Broker, name)]
if _missing_hooks:
    raise ImportError(f"ecohub.connect.broker needs amqtt 0.12's broker internals; missing: {_missing_hooks}")


class EmbeddedBroker:
    """An amqtt broker on host:port in the current event loop; use as an async context manager."""

    kind = "embedded"
    mqtt_version = 4  # amqtt speaks MQTT 3.1.1
    _live: ClassVar[weakref.WeakSet[EmbeddedBroker]] = weakref.WeakSet()

    def __init__(self, *, host: str, port: int, authority: BrokerAuthority) -> None:
        self.host = host
        self.port = port
        self.authority = authority
        self._id = secrets.token_hex(8)
        self._broker: Broker | None = None

    @classmethod
    def serving(cls, port: int, authority: BrokerAuthority | None = None) -> EmbeddedBroker | None:
        """The embedded broker running in this process on `port` (and for `authority`, if given), if any."""
        return next((b for b in list(cls._live) if b.port == port and b._broker is not None
                     and (authority is None or b.authority is authority)), None)

    def _config(self) -> dict[str, Any]:
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}},
            "timeout_disconnect_delay": 2,
            "plugins": {
                "ecohub.connect.broker.EcohubAuthPlugin": {"authority_id": self._id},
                "ecohub.connect.broker.EcohubTopicPlugin": {"authority_id": self._id},
            },
        }

    async def _start(self) -> None:
        broker = SafeBroker(self._config())
        await broker.start()
        self._broker = broker

    async def _stop(self, *, abort: bool = False) -> None:
        broker, self._broker = self._broker, None
        if broker is None:
            return
        for server in list(broker._servers.values()):  # free the port first, whatever shutdown does next
            if server.instance is not None:
                server.instance.close()
        if abort and isinstance(broker, SafeBroker):
            broker.abort_connections()
        try:
            await asyncio.wait_for(broker.shutdown(), timeout=5)
        except (TimeoutError, Exception) as err:  # shutdown must not mask the original error
            log.warning("embedded broker shutdown: %r", err)
            for task in (broker._broadcast_task, broker._session_monitor_task):
                if task is not None:
                    task.cancel()

    async def __aenter__(self) -> EmbeddedBroker:
        _AUTHORITIES[self._id] = self.authority
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        await self._start()
        EmbeddedBroker._live.add(self)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        EmbeddedBroker._live.discard(self)
        await self._stop()
        _AUTHORITIES.pop(self._id, None)

    def is_connected(self, client_id: str) -> bool:
        """Whether a client with this id holds a connected session right now."""
        entry = self._broker._sessions.get(client_id) if self._broker is not None else None
        return entry is not None and entry[0].transitions.state == "connected"

    async def restart(self, *, down_s: float = 0.0) -> None:
        """Stop the broker (every connection drops; sessions and retained messages are lost, as amqtt keeps no
        store) and start a new one on the same host/port with the same plugins; clients must reconnect."""
        if self._broker is None:
            raise RuntimeError("the embedded broker is not running")
        await self._stop(abort=True)
        if down_s > 0:
            await asyncio.sleep(down_s)
        await self._start()
        log.info("embedded broker restarted on %s:%s", self.host, self.port)

    async def drop(self, did: str) -> None:
        """Disconnect a device's session at once (after revocation)."""
        if self._broker is None:
            return
        entry = self._broker._sessions.get(did)  # amqtt has no public API for this
        if entry is not None:
            _session, handler = entry
            if handler is not None:
                await handler.stop()
