"""HTTP routes of the pricing policy: the brand's settings, a product's margin per market, a price check."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from ecohub.api.deps import OperatorDep, ServicesDep, StaffDep

router = APIRouter(tags=["pricing"])
Fraction = Field(default=None, ge=Decimal("-1"), le=Decimal("1"))


class PolicyIn(BaseModel):
    """Pricing settings for a product (or `*`: all) in a market (or `*`: all); fractions as decimals (0.05 = 5 %),
    unset fields inherit."""

    model: str = Field(default="*", max_length=64)
    market: str = Field(default="*", min_length=1, max_length=2)
    margin_floor: Decimal | None = Fraction
    margin_ceiling: Decimal | None = Fraction
    band: Decimal | None = Fraction
    other_cost_rate: Decimal | None = Fraction
    other_cost_fixed: Decimal | None = Field(default=None, ge=Decimal(0), le=Decimal(10**9))
    tax_rate: Decimal | None = Fraction


@router.put("/pricing/policies")
def set_policy(body: PolicyIn, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Set the brand's pricing settings (default ceiling: 5 % hardware net margin)."""
    settings = body.model_dump(exclude={"model", "market"}, exclude_none=True)
    return services.ecosystem.pricing.set_policy(body.model, body.market, actor=principal.actor, caller=principal,
                                                 **settings)


@router.get("/pricing/policies")
def get_policy(services: ServicesDep, _: StaffDep, model: str = "*", market: str = "*") -> dict[str, Any]:
    """The effective settings for a product (or `*`) in a market (or `*`)."""
    return services.ecosystem.pricing.policy(model, market)


@router.get("/products/{model}/pricing")
def product_pricing(model: str, services: ServicesDep, principal: StaffDep) -> list[dict[str, Any]]:
    """Per listed market: price, net margin, the allowed range and whether the listing keeps the policy."""
    return services.ecosystem.pricing.report(model, caller=principal)


@router.get("/products/{model}/pricing/{market}")
def quote(model: str, market: str, services: ServicesDep, principal: StaffDep,
          price: Decimal | None = Query(None, gt=0, le=10**12, description="in the market's currency"),
          ) -> dict[str, Any]:
    """BOM cost, allowed price range and (given `price`, else the converted target price) margin and verdict."""
    return services.ecosystem.pricing.quote(model, market, price, caller=principal)
