"""Domain events of the connect context (dispatched after the batch that produced them committed)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class DeviceProvisioned:
    """A device was provisioned for a product."""

    did: str
    model: str
    cell: str


@dataclass(frozen=True, slots=True)
class DeviceRevoked:
    """A device's credentials were revoked; the broker must drop it."""

    did: str
    cell: str


@dataclass(frozen=True, slots=True)
class PropertiesReported:
    """A device reported property values (keys `siid.piid`)."""

    did: str
    model: str
    cell: str
    ts: int
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EventReported:
    """A device reported an event."""

    did: str
    model: str
    cell: str
    siid: int
    eiid: int
    ts: int
    arguments: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class OnlineChanged:
    """A device came online or went offline (retained state or will)."""

    did: str
    cell: str
    online: bool
    ts: int
    firmware_version: str | None = None  # what the device said it runs, when it said so on coming online


@dataclass(frozen=True, slots=True)
class MessageDeadLettered:
    """A message (or part of one) was refused and stored with its reason."""

    did: str | None
    cell: str
    code: str
    reason: str


@dataclass(frozen=True, slots=True)
class DeviceConnectAttempted:
    """The broker asked whether a device may connect (auth callout): from which address, and the answer.

    `reason` is empty when allowed ("bad credentials", "too many failed connects: back off", …). The address is
    personal data: its consumer keeps it only as long as its retention says."""

    did: str
    host: str
    allowed: bool
    reason: str
    ts: int


@dataclass(frozen=True, slots=True)
class OtaProgressReported:
    """A device reported how a firmware update is going (ota_progress); the ota context records it."""

    did: str
    cell: str
    ts: int
    version: str
    state: str
    progress: int = 0
    code: int = 0
    message: str = ""
