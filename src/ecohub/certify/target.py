"""The hub under test: where its REST API and its broker are, and the credentials the suite uses on each."""

from __future__ import annotations

from dataclasses import dataclass

from ecohub.connect.domain import SERVICE_USER
from ecohub.settings import MqttSettings


@dataclass(frozen=True, slots=True)
class MqttAccess:
    """Where the suite's own MQTT clients (the probe) connect, and as whom."""

    host: str
    port: int
    password: str  # the hub's service password: the service user may read and write every unit's topics
    username: str = SERVICE_USER


@dataclass(frozen=True, slots=True)
class HubUnderTest:
    """A running hub reached only through its public surfaces: the REST API (an operator token) and MQTT."""

    api_url: str  # e.g. http://127.0.0.1:8080 (the /api/v1 prefix is added by the client)
    token: str  # an operator bearer token
    mqtt: MqttAccess
    origin: str = "attached"  # how the caller got it: "attached" (already running) or "started" (composed for the run)
    # the hub's MQTT payload limit (its settings.mqtt.max_payload): no REST route tells it, the caller knows it
    max_payload: int = MqttSettings().max_payload
