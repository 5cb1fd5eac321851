"""What every check sees: the hub's API, the units under test, the probe, the device process, timings."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

from ecohub.certify.client import HubApi
from ecohub.certify.devproc import DeviceProcess
from ecohub.certify.domain import Declaration, Status
from ecohub.certify.probe import Probe
from ecohub.certify.target import MqttAccess
from ecohub.spec import CompiledSpec


@dataclass(frozen=True, slots=True)
class Timing:
    """How long the suite waits for each kind of answer (tests shorten them)."""

    command_s: float = 3.0  # a reply to one request
    online_s: float = 20.0  # the device process starting and connecting
    report_s: float = 5.0  # every property / event showing up after connecting
    settle_s: float = 2.0  # properties_changed and the twin after a set
    will_s: float = 5.0  # the will after the process is killed
    reconnect_s: float = 10.0  # the device reconnecting after its connection was dropped
    hold_s: float = 0.5  # how long the impersonating client keeps the unit's session

    @classmethod
    def fast(cls) -> Timing:
        """Tight timings for a local simulator (the tests)."""
        return cls(command_s=1.5, online_s=15.0, report_s=3.0, settle_s=1.5, will_s=4.0, reconnect_s=6.0,
                   hold_s=0.3)


@dataclass(slots=True)
class Outcome:
    """What one check concluded, and why."""

    status: Status
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)


@dataclass
class Context:
    """Shared state of one suite run."""

    api: HubApi  # the hub's REST API: commands, twin, dead letters, the broker's refusals
    model: str
    compiled: CompiledSpec
    units: list[dict[str, str]]
    endpoint: MqttAccess  # the broker, as the service user (the probe's and the retained-state reader's login)
    probe: Probe
    device: DeviceProcess
    refusals_readable: bool  # whether the hub hands out its broker's refusal log
    hub_max_payload: int  # the hub's MQTT payload limit
    declaration: Declaration
    timing: Timing
    t0: float = field(default_factory=time.monotonic)
    rnd: random.Random = field(default_factory=lambda: random.Random(7))
    busy: list[tuple[float, float]] = field(default_factory=list)  # windows in which the suite sent requests
    own_acl_windows: list[tuple[float, float]] = field(default_factory=list)  # the suite's own impersonation
    online: bool = False
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def did(self) -> str:
        """The unit under test (unit A)."""
        return self.units[0]["did"]

    async def refusals(self, did: str, *, actions: tuple[str, ...]) -> list[dict[str, Any]]:
        """What the broker refused a unit since the run began ({t_ms, action, topic, reason}); [] when unreadable."""
        if not self.refusals_readable:
            return []
        rows = await self.api.refusals(did) or []
        # the hub stamps wall-clock time; the suite's windows are monotonic (same clock, or NTP-close, assumed)
        offset_s = time.time() - time.monotonic()
        out = []
        for r in rows:
            at = r["ts"] / 1000 - offset_s
            if r["action"] in actions and at >= self.t0:
                out.append({"t_ms": self.ms(at), "action": r["action"], "topic": r["topic"], "reason": r["reason"]})
        return out

    def ms(self, t: float) -> int:
        """Milliseconds since the run began."""
        return round((t - self.t0) * 1000)

    def mark_busy(self, start: float) -> None:
        """Record that the suite sent requests from `start` until now (the rate check skips these windows)."""
        self.busy.append((start, time.monotonic()))
