"""Pure rules of OTA: versions, stages, the deterministic rollout order, failure rate, download tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from ecohub.errors import ErrorCode, InvalidInput

DEFAULT_STAGES = (1, 10, 50, 100)
DEFAULT_THRESHOLD = 10.0  # percent of finished devices that may fail before a campaign halts
DEFAULT_DEVICE_TIMEOUT_S = 3600
MAX_STAGES = 10
_VERSION = re.compile(r"^\d{1,6}(\.\d{1,6}){0,3}$")


class CampaignStatus(StrEnum):
    """Where a campaign stands; only `running` offers anything."""

    RUNNING = "running"
    PAUSED = "paused"
    HALTED = "halted"  # the failure rate went over the threshold (resume to go on anyway)
    CANCELLED = "cancelled"
    COMPLETED = "completed"


class UpdateState(StrEnum):
    """One device's update: pending (not offered yet), offered, the device's own states, or skipped."""

    PENDING = "pending"
    OFFERED = "offered"
    DOWNLOADING = "downloading"
    VERIFYING = "verifying"
    INSTALLING = "installing"
    DONE = "done"
    FAILED = "failed"
    SKIPPED = "skipped"  # the device already runs this version or a newer one
    CANCELLED = "cancelled"


IN_FLIGHT = frozenset({UpdateState.OFFERED, UpdateState.DOWNLOADING, UpdateState.VERIFYING, UpdateState.INSTALLING})
# the order of a device's own steps: a step reported after a later one (two ingest workers' batches committing out
# of order) changes nothing
STEP_ORDER = {UpdateState.OFFERED: 0, UpdateState.DOWNLOADING: 1, UpdateState.VERIFYING: 2, UpdateState.INSTALLING: 3}
FINISHED = frozenset({UpdateState.DONE, UpdateState.FAILED, UpdateState.SKIPPED, UpdateState.CANCELLED})
ACTIVE = frozenset({CampaignStatus.RUNNING, CampaignStatus.PAUSED, CampaignStatus.HALTED})


def parse_version(text: str) -> tuple[int, ...]:
    """`1.2.3` → (1, 2, 3); 1 to 4 dot-separated numbers, compared numerically (2.10 is newer than 2.9)."""
    if not isinstance(text, str) or not _VERSION.match(text):
        raise InvalidInput(f"version must be 1 to 4 dot-separated numbers such as 1.2.3, got {text!r}",
                           code=ErrorCode.INVALID_VERSION)
    parts = tuple(int(p) for p in text.split("."))
    return parts + (0,) * (4 - len(parts))


def is_newer(version: str, than: str | None) -> bool:
    """Whether `version` is newer than `than` (anything is newer than an unknown version)."""
    if than is None:
        return True
    try:
        return parse_version(version) > parse_version(than)
    except InvalidInput:
        return True  # a device reporting a version we cannot compare gets the offer; it decides itself


def check_stages(stages: list[int]) -> list[int]:
    """Stages are cumulative percentages of the target devices: strictly increasing, each 1-100, ending at 100."""
    if not isinstance(stages, list) or not stages or len(stages) > MAX_STAGES:
        raise InvalidInput(f"stages must be a list of 1 to {MAX_STAGES} percentages", code=ErrorCode.INVALID_STAGES)
    for i, pct in enumerate(stages):
        if isinstance(pct, bool) or not isinstance(pct, int) or not 1 <= pct <= 100:
            raise InvalidInput(f"stages[{i}] must be a whole percentage 1-100, got {pct!r}",
                               code=ErrorCode.INVALID_STAGES)
        if i and pct <= stages[i - 1]:
            raise InvalidInput(f"stages must be strictly increasing: {stages[i - 1]} then {pct}",
                               code=ErrorCode.INVALID_STAGES)
    if stages[-1] != 100:
        raise InvalidInput(f"the last stage must be 100 (every target device), got {stages[-1]}",
                           code=ErrorCode.INVALID_STAGES)
    return stages


def check_threshold(threshold: float) -> float:
    """The failure-rate threshold is a percentage 0-100 (0: the first failure halts)."""
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 100:
        raise InvalidInput(f"failure threshold must be a percentage 0-100, got {threshold!r}",
                           code=ErrorCode.INVALID_THRESHOLD)
    return float(threshold)


MAX_RATE = 1_000_000


def check_rate(value: int, what: str) -> int:
    """A rollout cap (devices in flight at once, or offers per minute): a whole number ≥ 0, 0 meaning no cap."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_RATE:
        raise InvalidInput(f"{what} must be a whole number 0-{MAX_RATE:,} (0: no cap), got {value!r}",
                           code=ErrorCode.INVALID_ROLLOUT_RATE)
    return value


def room(*, in_flight: int, offered_last_minute: int, max_in_flight: int, max_per_minute: int) -> int | None:
    """How many more devices a campaign may offer now under its caps (None: no cap). The way AWS IoT Jobs'
    `maximumPerMinute` and Azure Device Update's concurrency keep a stage of thousands from updating — downloading,
    rebooting and reconnecting — all at once."""
    caps = [cap - used for cap, used in ((max_in_flight, in_flight), (max_per_minute, offered_last_minute)) if cap]
    return max(0, min(caps)) if caps else None


def bucket(did: str) -> float:
    """A device's fixed place in every rollout, 0 ≤ b < 100: the same devices go first in each campaign."""
    return int.from_bytes(hashlib.sha256(did.encode()).digest()[:8], "big") / 2**64 * 100


def stage_of(did: str, stages: list[int]) -> int:
    """The index of the first stage whose percentage covers the device."""
    b = bucket(did)
    return next(i for i, pct in enumerate(stages) if b < pct)


@dataclass(frozen=True, slots=True)
class Tally:
    """How many devices of a campaign (or stage) are in each state."""

    counts: Mapping[str, int]

    def of(self, *states: str) -> int:
        return sum(self.counts.get(s, 0) for s in states)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def failure_rate(self) -> float:
        """Failed ÷ (done + failed), in percent; 0 before anything finished."""
        finished = self.of(UpdateState.DONE, UpdateState.FAILED)
        return 100.0 * self.of(UpdateState.FAILED) / finished if finished else 0.0


def sign_token(key: bytes, did: str, image_id: int, expires_s: int) -> str:
    """A download token bound to one device and one image, valid until `expires_s` (unix seconds)."""
    body = f"{did}.{image_id}.{expires_s}"
    mac = hmac.new(key, f"ota-download:{body}".encode(), hashlib.sha256).digest()[:18]
    return f"{body}.{base64.urlsafe_b64encode(mac).decode()}"


def open_token(key: bytes, token: str, now_s: float) -> tuple[str, int]:
    """(did, image_id) of a valid token; InvalidInput (`invalid_token`/`token_expired`) otherwise."""
    parts = token.split(".")
    if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
        raise InvalidInput("not a firmware download token", code=ErrorCode.INVALID_TOKEN)
    did, image_id, expires = parts[0], int(parts[1]), int(parts[2])
    if not hmac.compare_digest(sign_token(key, did, image_id, expires), token):
        raise InvalidInput("the firmware download token does not verify", code=ErrorCode.INVALID_TOKEN)
    if expires < now_s:
        raise InvalidInput("the firmware download token has expired", code=ErrorCode.TOKEN_EXPIRED)
    return did, image_id
