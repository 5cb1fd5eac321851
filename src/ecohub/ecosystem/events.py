"""Domain events of the ecosystem context."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProductSpecChanged:
    """A product got a new spec version (certification reports for the old hash no longer apply)."""

    model: str
    version: int
    spec_hash: str


@dataclass(frozen=True, slots=True)
class ProductStageChanged:
    """A product moved along its lifecycle."""

    model: str
    from_stage: str | None
    to_stage: str
    actor: str


@dataclass(frozen=True, slots=True)
class PartnerRegistered:
    """A partner company or developer joined the ecosystem registry."""

    partner_id: str
    kind: str


@dataclass(frozen=True, slots=True)
class RoundRecorded:
    """An investment round was recorded; `brand_stake` is the computed stake after it (fraction as string)."""

    partner_id: str
    round_id: int
    brand_stake: str
    overridden: bool


@dataclass(frozen=True, slots=True)
class PartnerExited:
    """A partner went public or was acquired."""

    partner_id: str
    kind: str
    valuation: str
    currency: str


@dataclass(frozen=True, slots=True)
class ListingChanged:
    """A product's listing in a market was created or changed."""

    model: str
    market: str
    availability: str
