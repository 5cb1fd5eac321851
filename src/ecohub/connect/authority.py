"""The broker-independent authority: who may connect, and which topics each client may use."""

from __future__ import annotations

import hmac
import logging

from ecohub.connect.domain import SERVICE_USER, AclAction, device_may, service_may
from ecohub.connect.service import DeviceService
from ecohub.protocol import Topic

log = logging.getLogger(__name__)


class BrokerAuthority:
    """Answers the broker's questions: authenticate a CONNECT, filter publish/subscribe/receive."""

    def __init__(self, devices: DeviceService, *, service_password: str) -> None:
        self.devices = devices
        self.service_password = service_password
        self.refused = 0

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

    def may(self, *, username: str | None, topic: str, action: AclAction) -> bool:
        """The topic ACL of the design."""
        if username == SERVICE_USER:
            return service_may(topic, action)
        if username is None:
            return False
        allowed = device_may(username, topic, action)
        if not allowed and action != AclAction.RECEIVE:
            log.warning("refused %s of %s to %r", action, username, topic)
        return allowed

    def _refuse(self, client_id: str | None, reason: str) -> None:
        self.refused += 1
        log.warning("refused connection of %r: %s", client_id, reason)
