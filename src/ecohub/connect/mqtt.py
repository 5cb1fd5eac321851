"""The hub's own MQTT connections (ingest, commands) as async context managers over gmqtt."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from gmqtt import Client
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from ecohub.connect.domain import SERVICE_USER
from ecohub.errors import ErrorCode, Unavailable

log = logging.getLogger(__name__)

OnMessage = Callable[[str, bytes], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the hub's clients reach the broker, with which protocol level and credentials."""

    host: str
    port: int
    mqtt_version: int  # 4 = 3.1.1, 5 = 5.0
    password: str
    username: str = SERVICE_USER


class HubClient:
    """A service MQTT client; messages go to `on_message`, which is awaited before the PUBACK (MQTT 5)."""

    def __init__(self, endpoint: Endpoint, *, client_id: str, on_message: OnMessage | None = None,
                 clean: bool = True, receive_maximum: int | None = None, recv_buffer: int | None = None) -> None:
        kwargs: dict[str, Any] = {}
        if endpoint.mqtt_version == 5:
            kwargs["session_expiry_interval"] = 0 if clean else 3600
            if receive_maximum:
                kwargs["receive_maximum"] = receive_maximum
        self.endpoint = endpoint
        self.client = Client(client_id, clean_session=clean, optimistic_acknowledgement=False, **kwargs)
        self.client.set_auth_credentials(endpoint.username, endpoint.password)
        self.client.set_config({"reconnect_retries": -1, "reconnect_delay": 1})
        self._on_message = on_message
        self.client.on_message = self._dispatch
        self.connected = asyncio.Event()
        self._topics: dict[str, int] = {}
        self.client.on_connect = self._connected
        self.client.on_disconnect = lambda *_: self.connected.clear()
        self.recv_buffer = recv_buffer

    def _connected(self, *_: Any) -> None:
        # Subscribe again on every (re)connect: a broker that lost its state (restart without persistence,
        # shared subscriptions not restored) would otherwise keep the session but send it nothing. gmqtt appends
        # every subscribe to its own list, so the old entries go first or the list grows with each reconnect.
        self.client.subscriptions = [s for s in self.client.subscriptions if s.topic not in self._topics]
        for topic, qos in self._topics.items():
            self.client.subscribe(topic, qos=qos)
        if self.recv_buffer:
            # A small kernel receive buffer keeps what piles up while reading is paused small, too.
            transport = self._transport()
            sock = transport.get_extra_info("socket") if transport is not None else None
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.recv_buffer)
        self.connected.set()

    async def _dispatch(self, _client: Any, topic: str, payload: bytes, _qos: int, _props: Any) -> int:
        if self._on_message is not None:
            await self._on_message(topic, payload)
        return 0

    async def __aenter__(self) -> HubClient:
        version = MQTTv50 if self.endpoint.mqtt_version == 5 else MQTTv311
        try:
            await self.client.connect(self.endpoint.host, self.endpoint.port, version=version, keepalive=30)
        except Exception as err:
            raise Unavailable(f"cannot reach the MQTT broker at {self.endpoint.host}:{self.endpoint.port}: {err}",
                              code=ErrorCode.BROKER_UNAVAILABLE) from err
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await asyncio.wait_for(self.client.disconnect(), timeout=3)
        except Exception as err:
            log.debug("disconnect: %s", err)

    def _transport(self) -> Any:
        """The asyncio transport of gmqtt's live connection (private to gmqtt: None when it is not there)."""
        return getattr(getattr(self.client, "_connection", None), "_transport", None)

    def pause_reading(self, paused: bool) -> bool:
        """Stop (or resume) reading from the broker's socket: TCP back-pressure whatever the broker's flow
        control does. Returns False when there is no live connection."""
        transport = self._transport()
        if transport is None or transport.is_closing():
            return False
        if paused:
            transport.pause_reading()
        else:
            transport.resume_reading()
        return True

    def subscribe(self, *topics: str, qos: int = 1) -> None:
        """Subscribe to topic filters."""
        for topic in topics:
            self._topics[topic] = qos
            self.client.subscribe(topic, qos=qos)

    def unsubscribe(self, topic: str) -> None:
        """Drop a subscription."""
        self._topics.pop(topic, None)
        self.client.unsubscribe(topic)

    def publish(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> None:
        """Queue a publish (gmqtt resends unacknowledged QoS 1 messages after a reconnect)."""
        self.client.publish(topic, payload, qos=qos, retain=retain)
