"""Test-side MQTT 3.1.1 devices: a paho wrapper with blocking helpers, and raw CONNECT for the exact CONNACK byte."""

from __future__ import annotations

import json
import queue
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def _utf8(s: str | bytes) -> bytes:
    """MQTT length-prefixed string."""
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("!H", len(b)) + b


def _remaining(n: int) -> bytes:
    """MQTT variable-length remaining-length encoding."""
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def connect_packet(client_id: str, user: str, password: str, keepalive: int = 30) -> bytes:
    """An MQTT 3.1.1 CONNECT with username and password (clean session)."""
    body = _utf8("MQTT") + bytes([4, 0xC2]) + struct.pack("!H", keepalive) + _utf8(client_id) + _utf8(user) \
        + _utf8(password)
    return bytes([0x10]) + _remaining(len(body)) + body


def subscribe_packet(mid: int, topic: str, qos: int) -> bytes:
    """An MQTT 3.1.1 SUBSCRIBE of one topic filter."""
    body = struct.pack("!H", mid) + _utf8(topic) + bytes([qos])
    return bytes([0x82]) + _remaining(len(body)) + body


def raw_connack(host: str, port: int, client_id: str, user: str, password: str, timeout: float = 5.0) -> int:
    """Send an MQTT 3.1.1 CONNECT and return the CONNACK return code byte (-1 if closed without CONNACK)."""
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(connect_packet(client_id, user, password))
        data = b""
        try:
            while len(data) < 4:
                chunk = s.recv(4 - len(data))
                if not chunk:
                    break
                data += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    if len(data) < 4 or data[0] != 0x20:
        return -1
    return data[3]


@dataclass
class Device:
    """A paho MQTT 3.1.1 client (its own network thread) with waitable CONNACK / SUBACK / messages / disconnect."""

    did: str
    secret: str
    host: str
    port: int
    clean: bool = True
    will: tuple[str, bytes, bool] | None = None
    client: mqtt.Client = field(init=False)
    messages: queue.Queue[tuple[str, bytes, bool]] = field(default_factory=queue.Queue)
    connack: int | None = None
    subacks: list[list[int]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)
    disconnected: threading.Event = field(default_factory=threading.Event)
    _suback_ev: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.did, protocol=mqtt.MQTTv311, clean_session=self.clean
        )
        c.username_pw_set(self.did, self.secret)
        if self.will:
            c.will_set(self.will[0], self.will[1], qos=1, retain=self.will[2])
        c.max_inflight_messages_set(100)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = self._on_subscribe
        self.client = c

    def _on_connect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connack = int(rc.value) if hasattr(rc, "value") else int(rc)
        if not rc.is_failure:
            self.disconnected.clear()
            self.connected.set()

    def _on_disconnect(self, c: Any, u: Any, flags: Any, rc: Any, props: Any) -> None:
        self.connected.clear()
        self.disconnected.set()

    def _on_message(self, c: Any, u: Any, m: mqtt.MQTTMessage) -> None:
        self.messages.put((m.topic, bytes(m.payload), bool(m.retain)))

    def _on_subscribe(self, c: Any, u: Any, mid: int, rcs: list[Any], props: Any) -> None:
        self.subacks.append([int(r.value) for r in rcs])
        self._suback_ev.set()

    def connect(self, timeout: float = 5.0) -> bool:
        """Connect and start the network loop; True once CONNACK accepted."""
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        return self.connected.wait(timeout)

    def subscribe(self, topic: str, qos: int = 1, timeout: float = 5.0) -> list[int]:
        """Subscribe and return the SUBACK codes (paho reason codes: 0/1/2 granted, 128 failure)."""
        self._suback_ev.clear()
        self.client.subscribe(topic, qos)
        assert self._suback_ev.wait(timeout), "no SUBACK"
        return self.subacks[-1]

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, timeout: float = 5.0
    ) -> bool:
        """Publish and wait for the PUBACK (QoS 1/2); True when acknowledged."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        if qos == 0:
            return True
        try:
            info.wait_for_publish(timeout)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def get(self, timeout: float = 2.0) -> tuple[str, bytes, bool] | None:
        """Next received message or None."""
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Clean DISCONNECT and stop the loop."""
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self) -> None:
        """Close the socket without DISCONNECT (the will fires)."""
        sock = self.client.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)  # type: ignore[union-attr,attr-defined]
        time.sleep(0.1)
        self.client.loop_stop()


class Burst:
    """QoS 1 publisher on a Device: records which message ids got their PUBACK."""

    def __init__(self, dev: Device) -> None:
        self.dev = dev
        self.mid_to_id: dict[int, int] = {}
        self.acked: set[int] = set()
        self.lock = threading.Lock()
        self.frozen = False
        self._early: set[int] = set()  # PUBACKs that beat the mid bookkeeping
        dev.client.on_publish = self._on_publish

    def _on_publish(self, c: Any, u: Any, mid: int, rc: Any, props: Any) -> None:
        with self.lock:
            if self.frozen:
                return
            if mid in self.mid_to_id:
                self.acked.add(self.mid_to_id.pop(mid))
            else:
                self._early.add(mid)

    def send(self, ids: range, topic: str | None = None, size: int = 0) -> None:
        """Queue QoS 1 publishes of {"did","id"} (paho sends them with up to max_inflight outstanding)."""
        topic = topic or f"ecohub/{self.dev.did}/up"
        pad = "x" * size
        for i in ids:
            payload = json.dumps({"did": self.dev.did, "id": i, "pad": pad})
            info = self.dev.client.publish(
                topic, payload, qos=1
            )  # never under self.lock: paho calls back under its own
            with self.lock:
                if info.mid in self._early:
                    self._early.discard(info.mid)
                    if not self.frozen:
                        self.acked.add(i)
                else:
                    self.mid_to_id[info.mid] = i

    def wait(self, n: int, timeout: float = 30.0) -> bool:
        """Wait until n PUBACKs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(self.acked) >= n:
                return True
            time.sleep(0.01)
        return False

    def freeze(self) -> set[int]:
        """Stop counting PUBACKs and return those seen so far."""
        with self.lock:
            self.frozen = True
            return set(self.acked)
