"""Pure rules of connect: credentials, bind codes and the topic ACL of the device protocol."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from enum import StrEnum

from ecohub.protocol import Channel, parse_topic

SECRET_BYTES = 32
BIND_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: people type these from labels
BIND_CODE_LEN = 8
SERVICE_USER = "ecohub-service"


class AclAction(StrEnum):
    """What a client wants to do with a topic."""

    PUBLISH = "publish"
    SUBSCRIBE = "subscribe"
    RECEIVE = "receive"


def new_secret() -> str:
    """A device secret with 256 bits of entropy."""
    return secrets.token_urlsafe(SECRET_BYTES)


def new_bind_code() -> str:
    """A short code printed on the device label for claiming it into a home (40 bits)."""
    return "".join(secrets.choice(BIND_ALPHABET) for _ in range(BIND_CODE_LEN))


def hash_secret(secret: str, salt: bytes) -> bytes:
    """Salted SHA-256: secrets are 256-bit random, so a slow KDF would add nothing but connect latency."""
    return hashlib.sha256(salt + secret.encode()).digest()


def check_secret(secret: str, salt: bytes, expected: bytes) -> bool:
    """Constant-time comparison of a presented secret with the stored hash."""
    return hmac.compare_digest(hash_secret(secret, salt), expected)


def hash_bind_code(code: str, key: bytes) -> bytes:
    """Bind codes are short, so they are hashed with the hub's secret key (no offline guessing)."""
    return hmac.new(key, code.strip().upper().encode(), hashlib.sha256).digest()


def device_may(did: str, topic: str, action: AclAction) -> bool:
    """A device may publish only to its own up/state and subscribe to / receive only its own down."""
    parsed = parse_topic(topic)
    if parsed is None or parsed.did != did:
        return False
    if action == AclAction.PUBLISH:
        return parsed.channel in (Channel.UP, Channel.STATE)
    return parsed.channel == Channel.DOWN


def service_may(topic: str, action: AclAction) -> bool:
    """The hub's own clients: everything under the protocol root, shared subscriptions included."""
    if topic.startswith("$share/"):
        parts = topic.split("/", 2)
        topic = parts[2] if len(parts) == 3 else ""
    return topic == "ecohub/#" or topic.startswith("ecohub/")
