"""Domain events of the ota context (published after the change committed)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class FirmwareApproved:
    """The brand countersigned an image: campaigns may use it."""

    image_id: int
    model: str
    version: str


@dataclass(frozen=True, slots=True)
class CampaignChanged:
    """A campaign was created, advanced a stage, halted, paused, resumed, cancelled or completed."""

    campaign_id: int
    status: str
    stage: int
    reason: str = ""
