"""The broker-independent authority: who may connect, and which topics each client may use."""

from __future__ import annotations

import hmac
import logging
import time
import weakref
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, ClassVar

from ecohub.connect.domain import SERVICE_USER
from ecohub.connect.service import DeviceService
from ecohub.protocol import Topic

log = logging.getLogger(__name__)

MAX_TRACKED_CLIENTS = 10_000
MAX_REFUSALS_PER_CLIENT = 100


@dataclass(frozen=True, slots=True)
class Refusal:
    """One thing the broker refused a client: a CONNECT or a publish/subscribe outside its ACL."""

    at: float  # time.monotonic(), to compare with a test's own time windows
    client: str
    action: str  # "connect", "publish" or "subscribe"
    topic: str | None
    reason: str


class BrokerAuthority:
    """Answers the broker's questions about devices: authenticate a CONNECT (through the auth callout), and keep
    what was refused to each device (connects, and the topic violations the embedded server logs)."""

    _live: ClassVar[weakref.WeakSet[BrokerAuthority]] = weakref.WeakSet()

    def __init__(self, devices: DeviceService, *, service_password: str, records_all: bool = True) -> None:
        self.devices = devices
        self.service_password = service_password
        self.refused = 0
        self._refusals: OrderedDict[str, deque[Refusal]] = OrderedDict()
        if records_all:  # it sees every refusal (connects and topic violations): the certify suite may rely on it
            BrokerAuthority._live.add(self)

    @classmethod
    def serving(cls, devices: DeviceService) -> BrokerAuthority | None:
        """The authority of a broker running in this process for these devices (the certify suite reads it)."""
        return next((a for a in list(cls._live) if a.devices is devices), None)

    def refusals_of(self, client: str) -> list[Refusal]:
        """What was refused to one client id / username, oldest first (the last 100)."""
        return list(self._refusals.get(client, ()))

    def record(self, client: str | None, action: str, topic: str | None, reason: str, *,
               at: float | None = None) -> None:
        """Keep one refusal; `at` (monotonic) when it happened, if not now (a log line read later)."""
        key = client or ""
        if key not in self._refusals:
            if len(self._refusals) >= MAX_TRACKED_CLIENTS:
                self._refusals.popitem(last=False)
            self._refusals[key] = deque(maxlen=MAX_REFUSALS_PER_CLIENT)
        self._refusals[key].append(Refusal(time.monotonic() if at is None else at, key, action, topic, reason))

    def authenticate(self, *, client_id: str | None, username: str | None, password: str | None,
                     will_topic: str | None) -> bool:
        """Devices: client id = username = did, password = secret, will only on its own state topic."""
        if username == SERVICE_USER:
            ok = password is not None and hmac.compare_digest(password, self.service_password)
            if not ok:
                self._refuse(client_id, "wrong service password")
            return ok
        if not client_id or not username or client_id != username or password is None:
            self._refuse(client_id, "client id must equal the username (the did) and a password is required")
            return False
        if will_topic and will_topic != Topic.state(username):
            self._refuse(client_id, f"will topic {will_topic!r} is not the device's own state topic")
            return False
        if not self.devices.verify(username, password):
            self._refuse(client_id, "unknown device or wrong secret")
            return False
        return True

    def _refuse(self, client_id: str | None, reason: str) -> None:
        self.refused += 1
        self.record(client_id, "connect", None, reason)
        log.warning("refused connection of %r: %s", client_id, reason)


def recorded_refusals(devices: DeviceService, client: str) -> list[dict[str, Any]] | None:
    """What the broker serving these devices in this process refused one client, oldest first; None when no broker
    in this process records every refusal (an attached NATS cluster keeps its topic violations in its nodes' logs)."""
    authority = BrokerAuthority.serving(devices)
    if authority is None:
        return None
    # monotonic times mean nothing to another process: hand out wall-clock unix ms
    offset_s = time.time() - time.monotonic()
    return [{"ts": round((r.at + offset_s) * 1000), "action": r.action, "topic": r.topic, "reason": r.reason}
            for r in authority.refusals_of(client)]
