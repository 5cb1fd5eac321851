"""HTTP routes of telemetry's operator side: retention policies per product and property."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ecohub.api.deps import OperatorDep, ServicesDep

router = APIRouter(tags=["telemetry"])


class RetentionIn(BaseModel):
    """Days to keep raw samples (and events) and rollups; null for the hub's default."""

    key: str | None = Field(default=None, examples=["11.1"], description="one property (siid.piid); omit for all")
    raw_days: int | None = Field(default=None, examples=[90])
    rollup_days: int | None = Field(default=None, examples=[730])


@router.get("/products/{model}/retention")
def get_retention(model: str, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """How long this product's telemetry is kept: raw days, rollup days, per-property exceptions, the default."""
    return services.telemetry.retention_of(model, caller=principal)


@router.put("/products/{model}/retention")
def put_retention(model: str, body: RetentionIn, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Set the product's (or one property's) retention; enforced by the hub's next prune."""
    return services.telemetry.set_retention(model, key=body.key, raw_days=body.raw_days,
                                            rollup_days=body.rollup_days, caller=principal)
