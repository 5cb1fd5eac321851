"""HTTP routes of the ecosystem context: products here; partners, supply and channel routers are included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from ecohub.api import paging
from ecohub.api.deps import Limit, Offset, ServicesDep, StaffDep, require
from ecohub.api.paging import CursorParam
from ecohub.api.routes import channel as api_channel
from ecohub.api.routes import designs as api_designs
from ecohub.api.routes import partners as api_partners
from ecohub.api.routes import pricing as api_pricing
from ecohub.api.routes import supply as api_supply
from ecohub.auth import Principal, Role
from ecohub.ecosystem.domain import Stage

router = APIRouter(tags=["products"])
router.include_router(api_partners.router)
router.include_router(api_supply.router)
router.include_router(api_channel.router)
router.include_router(api_designs.router)
router.include_router(api_pricing.router)


class DefinitionIn(BaseModel):
    """The brand's definition of a product (only the fields sent change)."""

    category: str | None = None
    target_markets: list[str] | None = Field(None, examples=[["DE", "FR", "US"]])
    design_ref: str | None = Field(None, description="read-only (the current design version); sending another "
                                   "value is refused: upload designs at /products/{model}/designs")
    target_price: Decimal | None = None
    price_currency: str | None = None
    forecast_volume: int | None = Field(default=None, ge=0, le=10**12)


class ProductIn(DefinitionIn):
    """A product with its miot-spec-v2 document, and optionally its definition."""

    model: str = Field(examples=["acme.plug.v1"])
    partner_id: str | None = None
    spec: dict[str, Any]
    stage: Stage | None = Field(default=None, description="how far a new product walks its lifecycle; without it, "
                                "as far as the definition allows (up to certification; `defined` while the "
                                "definition is incomplete, with `definition_missing` in the answer)")
    major: bool = Field(default=False, description="publish a breaking spec change as a new major version "
                        "(the product goes back to certification)")


class SpecCheckIn(BaseModel):
    """A candidate spec version to compare with the product's current one."""

    spec: dict[str, Any]


class TransitionIn(BaseModel):
    """A lifecycle move."""

    to: Stage
    reason: str = ""


@router.post("/products", status_code=201)
def create_product(body: ProductIn, services: ServicesDep,
                   principal: Principal = Depends(require(Role.OPERATOR, Role.PARTNER))) -> dict[str, Any]:
    """Create a product (or add a spec version) from a miot-spec-v2 document."""
    view = services.products.import_spec(body.spec, model=body.model, actor=principal.actor, caller=principal,
                                         partner_id=body.partner_id,
                                         category=body.category, stage=body.stage, target_markets=body.target_markets,
                                         design_ref=body.design_ref, target_price=body.target_price,
                                         price_currency=body.price_currency, forecast_volume=body.forecast_volume,
                                         major=body.major)
    return view.to_dict()


@router.post("/products/{model}/spec:check")
def check_spec(model: str, body: SpecCheckIn, services: ServicesDep, principal: StaffDep) -> dict[str, Any]:
    """What a new spec version would change, and whether it only adds (MIoT's rule) or needs a new major version."""
    return services.products.check_spec(model, body.spec, caller=principal)


@router.get("/products", responses={200: {"headers": paging.LINK_HEADER}})
def list_products(request: Request, response: Response, services: ServicesDep, partner_id: str | None = None,
                  stage: str | None = None, category: str | None = None, limit: Limit = 1000, offset: Offset = 0,
                  cursor: CursorParam = None,
                  principal: Principal = Depends(require(Role.OPERATOR, Role.PARTNER))) -> list[dict[str, Any]]:
    """Products, optionally by partner, stage or category (partners see their own); `Link` names the next page."""
    start = paging.offset_of(cursor, offset)
    rows = [p.to_dict() for p in services.products.list(partner_id=partner_id, stage=stage, category=category,
                                                        limit=limit + 1, offset=start, caller=principal)]
    return paging.offset_page(request, response, rows, limit=limit, start=start)


@router.get("/products/{model}")
def get_product(model: str, services: ServicesDep,
                principal: Principal = Depends(require(Role.OPERATOR, Role.PARTNER))) -> dict[str, Any]:
    """A product with its spec document and lifecycle history."""
    view = services.products.get(model, caller=principal)
    return {**view.to_dict(), "spec": services.products.get_spec_document(model),
            "history": services.products.history(model)}


@router.post("/products/{model}/transitions")
def transition(model: str, body: TransitionIn, services: ServicesDep,
               principal: Principal = Depends(require(Role.OPERATOR))) -> dict[str, Any]:
    """Move a product along its lifecycle (guards apply)."""
    return services.products.transition(model, body.to, actor=principal.actor, reason=body.reason).to_dict()


@router.patch("/products/{model}")
def define_product(model: str, body: DefinitionIn, services: ServicesDep,
                   principal: Principal = Depends(require(Role.OPERATOR))) -> dict[str, Any]:
    """Set category, target markets, target price or forecast volume (leaving `defined` needs them all)."""
    return services.products.define(model, actor=principal.actor, **body.model_dump(exclude_none=True)).to_dict()


@router.get("/products/{model}/transitions")
def transitions(model: str, services: ServicesDep,
                principal: Principal = Depends(require(Role.OPERATOR, Role.PARTNER))) -> list[dict[str, Any]]:
    """Every recorded lifecycle transition of a product (who, when, why)."""
    return services.products.history(model, caller=principal)
