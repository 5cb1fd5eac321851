"""The embedded broker adapter: amqtt in-process, with ecohub's authentication and topic ACL as plugins."""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from types import TracebackType

from amqtt.broker import Broker
from amqtt.contexts import Action
from amqtt.plugins.base import BaseAuthPlugin, BaseTopicPlugin
from amqtt.session import Session

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


class EmbeddedBroker:
    """An amqtt broker on host:port in the current event loop; use as an async context manager."""

    kind = "embedded"
    mqtt_version = 4  # amqtt speaks MQTT 3.1.1

    def __init__(self, *, host: str, port: int, authority: BrokerAuthority) -> None:
        self.host = host
        self.port = port
        self.authority = authority
        self._id = secrets.token_hex(8)
        self._broker: Broker | None = None

    async def __aenter__(self) -> EmbeddedBroker:
        _AUTHORITIES[self._id] = self.authority
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}", "max_connections": 0}},
            "timeout_disconnect_delay": 2,
            "plugins": {
                "ecohub.connect.broker.EcohubAuthPlugin": {"authority_id": self._id},
                "ecohub.connect.broker.EcohubTopicPlugin": {"authority_id": self._id},
            },
        }
        for name in ("amqtt", "transitions"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self._broker = Broker(config)
        await self._broker.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._broker is not None:
            try:
                await asyncio.wait_for(self._broker.shutdown(), timeout=5)
            except (TimeoutError, Exception) as err:  # shutdown must not mask the original error
                log.warning("embedded broker shutdown: %s", err)
        _AUTHORITIES.pop(self._id, None)

    async def drop(self, did: str) -> None:
        """Disconnect a device's session at once (after revocation)."""
        if self._broker is None:
            return
        entry = self._broker._sessions.get(did)  # amqtt has no public API for this
        if entry is not None:
            _session, handler = entry
            if handler is not None:
                await handler.stop()
