"""Pure rules of the security audit: severities, finding states, the facts checks read, and what a check is."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    """How urgent a finding is; a new `critical` one alerts the operator (console banner and webhook)."""

    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class FindingStatus(StrEnum):
    """open → acknowledged (seen, being handled) or suppressed (accepted risk: not raised again); a finding whose
    condition is gone is resolved (a suppressed one stays suppressed, so the pair is never raised again)."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    SUPPRESSED = "suppressed"
    RESOLVED = "resolved"


ACTIVE = (FindingStatus.OPEN, FindingStatus.ACKNOWLEDGED, FindingStatus.SUPPRESSED)


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The audit's limits (from settings.security)."""

    auth_failures: int = 20  # failed CONNECTs of one device id within the window
    auth_window_s: float = 3600.0
    source_addresses: int = 10  # distinct addresses one device connected from within the window
    source_window_s: float = 86400.0
    rate_window_s: float = 300.0  # message rate measured over this window (≤ the dedup inbox's memory)
    never_updated_days: float = 365.0


@dataclass(frozen=True, slots=True)
class DeviceFacts:
    """What the audit knows of one device."""

    did: str
    cell: str
    model: str
    firmware_version: str | None = None  # the twin's `firmware_version`, when the device reports one
    first_firmware: tuple[str, int] | None = None  # (version, first seen ms) as the audit first recorded it
    last_update_ms: int | None = None  # when an OTA campaign last completed an update of this device


@dataclass(frozen=True, slots=True)
class ProductFacts:
    """What the audit knows of one product: its stage and what its newest certification report declares."""

    model: str
    stage: str
    devices: int  # active devices in the field
    declaration: dict[str, Any] | None  # None: no report, or a report without a declaration
    report_expires: datetime | None


@dataclass
class Facts:
    """Everything the checks read, gathered once per audit run (checks are pure functions of it)."""

    now_ms: int
    today: date
    thresholds: Thresholds
    devices: list[DeviceFacts] = field(default_factory=list)
    products: dict[str, ProductFacts] = field(default_factory=dict)
    auth_failures: dict[str, tuple[int, int]] = field(default_factory=dict)  # did → (failures, addresses)
    source_addresses: dict[str, int] = field(default_factory=dict)  # did → distinct addresses of allowed connects
    message_counts: dict[str, int] = field(default_factory=dict)  # did → messages in the rate window
    vulnerable: dict[tuple[str, str], str] = field(default_factory=dict)  # (model, version) → reason


@dataclass(frozen=True, slots=True)
class Hit:
    """A check's finding about one subject, with what it saw."""

    subject: str
    detail: dict[str, Any]
    cell: str | None = None  # a device's cell; product findings live in the default cell


@dataclass(frozen=True, slots=True)
class Check:
    """One audit check, as data: its id, severity, what it looks for, whether it judges devices or products."""

    id: str
    severity: Severity
    description: str
    subject_kind: str  # device | product
    run: Callable[[Facts], Iterable[Hit]]

    def to_dict(self) -> dict[str, str]:
        """The check as the API lists it."""
        return {"id": self.id, "severity": str(self.severity), "description": self.description,
                "subject_kind": self.subject_kind}


def support_end(declaration: dict[str, Any] | None) -> date | None:
    """The declared end of security support (`support_period.end`, ISO date), if any and well-formed."""
    end = ((declaration or {}).get("support_period") or {}).get("end")
    try:
        return date.fromisoformat(str(end)) if end else None
    except ValueError:
        return None


def declared_rate(declaration: dict[str, Any] | None) -> float | None:
    """The declared `limits.max_messages_per_s` (what the certification suite measured against), if any."""
    value = ((declaration or {}).get("limits") or {}).get("max_messages_per_s")
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
