"""The brand's definition of a product and its industrial design as lifecycle guards.

Leaving `defined` (to in_development and every later working stage) needs the definition complete: a category, target
markets, a target price and forecast volume, and a valid spec. Being approved for sale and being launched need the
product's current industrial-design version approved by the brand (a newer upload needs a new approval)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from ecohub.ecosystem.domain import Stage
from ecohub.ecosystem.models import DesignVersion, Product, ProductMarket
from ecohub.errors import Conflict, ErrorCode

UNCATEGORISED = "uncategorised"
# every stage after `defined` in which the product is worked on or sold needs the complete definition
NEEDS_DEFINITION = frozenset({Stage.IN_DEVELOPMENT, Stage.CERTIFICATION, Stage.APPROVED, Stage.LAUNCHED})
# the ID design is frozen (current version approved) before the product is approved for sale, and again at launch
NEEDS_APPROVED_DESIGN = frozenset({Stage.APPROVED, Stage.LAUNCHED})


class DesignStatus(StrEnum):
    """Where the brand's review of one design version stands."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True, slots=True)
class Definition:
    """What the guard looks at: the brand's definition of a product."""

    category: str | None
    target_markets: tuple[str, ...]
    target_price: Decimal | None
    forecast_volume: int | None
    has_spec: bool


def missing_definition(d: Definition) -> list[str]:
    """The parts of the definition that are missing (empty when complete), in a stable order."""
    missing = []
    if not d.category or d.category == UNCATEGORISED:
        missing.append("category")
    if not d.target_markets:
        missing.append("target_markets")
    if d.target_price is None or d.target_price <= 0:
        missing.append("target_price")
    if not d.forecast_volume or d.forecast_volume <= 0:
        missing.append("forecast_volume")
    if not d.has_spec:
        missing.append("spec")
    return missing


def design_problem(versions: Sequence[tuple[int, str]]) -> str | None:
    """Why the design does not allow approval or launch ((version, status) pairs), or None when the newest version
    is approved."""
    if not versions:
        return "no industrial-design version was uploaded"
    version, status = max(versions)
    if status != DesignStatus.APPROVED:
        return f"the current design version v{version} is {status}, not approved"
    return None


def missing_of(s: Session, product: Product) -> list[str]:
    """What the product's definition still lacks to leave `defined` (empty when complete)."""
    markets = tuple(s.scalars(select(ProductMarket.market).where(ProductMarket.model == product.model)))
    return missing_definition(Definition(product.category, markets, product.target_price, product.forecast_volume,
                                         bool(product.spec_hash)))


def check_readiness(s: Session, product: Product, target: Stage) -> None:
    """Refuse a move to `target` while the definition is incomplete or the current design is not approved (409,
    naming what is missing)."""
    if target in NEEDS_DEFINITION:
        missing = missing_of(s, product)
        if missing:
            raise Conflict(f"{product.model} cannot go to {target}: its definition is incomplete; missing: "
                           + ", ".join(missing), code=ErrorCode.DEFINITION_INCOMPLETE, missing=missing)
    if target in NEEDS_APPROVED_DESIGN:
        versions = [(v, st) for v, st in s.execute(select(DesignVersion.version, DesignVersion.status)
                                                   .where(DesignVersion.model == product.model))]
        problem = design_problem(versions)
        if problem:
            raise Conflict(f"{product.model} cannot go to {target}: {problem} (the brand approves designs at "
                           f"/api/v1/products/{product.model}/designs)", code=ErrorCode.DESIGN_NOT_APPROVED)
