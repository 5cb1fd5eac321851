"""Domain events of the certify context: what changes the listing gate's answer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ReportRecorded:
    """A brand-signed certification report was kept for a product's spec."""

    model: str
    spec_hash: str
    report_id: str


@dataclass(frozen=True, slots=True)
class EvidenceChanged:
    """A piece of certification evidence was recorded, accepted or revoked."""

    model: str
    market: str
    regime: str
    evidence_id: int
    status: str
