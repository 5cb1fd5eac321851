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
