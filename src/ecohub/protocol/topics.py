"""Topic builders and the parser; topics carry only opaque device ids."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ROOT = "ecohub"
MQTT_MSGS_PREFIX = "$MQTT.msgs."  # where NATS's MQTT layer stores QoS 1/2 publishes ($MQTT_msgs stream)


class Channel(StrEnum):
    """The three per-device channels of the protocol."""

    UP = "up"
    DOWN = "down"
    STATE = "state"


@dataclass(frozen=True, slots=True)
class Topic:
    """A parsed device topic."""

    did: str
    channel: Channel

    def __str__(self) -> str:
        return f"{ROOT}/{self.did}/{self.channel}"

    @staticmethod
    def up(did: str) -> str:
        """Device → cloud notifications and replies."""
        return f"{ROOT}/{did}/{Channel.UP}"

    @staticmethod
    def down(did: str) -> str:
        """Cloud → device requests."""
        return f"{ROOT}/{did}/{Channel.DOWN}"

    @staticmethod
    def state(did: str) -> str:
        """Retained online/offline state, also the MQTT will."""
        return f"{ROOT}/{did}/{Channel.STATE}"

    @staticmethod
    def all_up(share_group: str | None = None) -> str:
        """Subscription filter for every device's up channel, optionally as a shared subscription."""
        return _shared(f"{ROOT}/+/{Channel.UP}", share_group)

    @staticmethod
    def all_state(share_group: str | None = None) -> str:
        """Subscription filter for every device's state channel."""
        return _shared(f"{ROOT}/+/{Channel.STATE}", share_group)


def _shared(topic_filter: str, group: str | None) -> str:
    return f"$share/{group}/{topic_filter}" if group else topic_filter


def parse_topic(topic: str) -> Topic | None:
    """Parse `ecohub/{did}/{channel}`; None when the topic is not a device topic."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != ROOT or not parts[1]:
        return None
    try:
        channel = Channel(parts[2])
    except ValueError:
        return None
    if "+" in parts[1] or "#" in parts[1]:
        return None
    return Topic(parts[1], channel)


def subject_of(topic: str) -> str:
    """The NATS subject an MQTT topic travels on (NATS's MQTT layer maps `/` to `.`): `ecohub.{did}.up`."""
    return topic.replace("/", ".")


def topic_of(subject: str) -> str:
    """The MQTT topic of a NATS subject, also of one stored by the MQTT layer (`$MQTT.msgs.ecohub.{did}.up`)."""
    return subject.removeprefix(MQTT_MSGS_PREFIX).replace(".", "/")

