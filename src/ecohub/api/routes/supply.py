"""HTTP routes of the supply chain: suppliers, components, BOMs, aggregated demand, supplier dependency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ecohub.api import paging
from ecohub.api.deps import Limit, ServicesDep, SmallCount, require
from ecohub.api.paging import CursorParam
from ecohub.auth import Principal, Role

router = APIRouter(tags=["supply"])
Operator = Depends(require(Role.OPERATOR))


class SupplierIn(BaseModel):
    """A supplier."""

    name: str
    id: str | None = None
    country: str
    kind: str = Field(examples=["wifi-module"])


class ComponentIn(BaseModel):
    """A component with its unit cost."""

    part_no: str
    supplier_id: str
    name: str
    kind: str
    unit_cost: Decimal
    currency: str = "USD"


class BomLineIn(BaseModel):
    """One BOM line."""

    part_no: str
    quantity: int = Field(default=1, ge=1, le=1_000_000)


@router.post("/suppliers", status_code=201)
def add_supplier(body: SupplierIn, services: ServicesDep,
                 _: Principal = Operator) -> dict[str, Any]:
    """Register a supplier."""
    return services.ecosystem.supply.add_supplier(name=body.name, supplier_id=body.id, country=body.country,
                                                  kind=body.kind)


@router.get("/suppliers")
def list_suppliers(services: ServicesDep, kind: str | None = None, _: Principal = Operator) -> list[dict[str, Any]]:
    """Suppliers."""
    return services.ecosystem.supply.suppliers(kind=kind)


@router.get("/suppliers/dependency")
def supplier_dependency(services: ServicesDep, min_partners: SmallCount = 1,
                        _: Principal = Operator) -> list[dict[str, Any]]:
    """Suppliers ranked by how many partners depend on them."""
    return services.ecosystem.supply.dependency(min_partners=min_partners)


@router.post("/components", status_code=201)
def add_component(body: ComponentIn, services: ServicesDep,
                  _: Principal = Operator) -> dict[str, Any]:
    """Register a component."""
    return services.ecosystem.supply.add_component(**body.model_dump())


@router.get("/components")
def list_components(services: ServicesDep, supplier_id: str | None = None, kind: str | None = None,
                    _: Principal = Operator) -> list[dict[str, Any]]:
    """Components."""
    return services.ecosystem.supply.components(supplier_id=supplier_id, kind=kind)


@router.put("/products/{model}/bom")
def set_bom(model: str, lines: list[BomLineIn], services: ServicesDep,
            _: Principal = Operator) -> list[dict[str, Any]]:
    """Replace a product's bill of materials."""
    return services.ecosystem.supply.set_bom(model, [line.model_dump() for line in lines])


@router.get("/products/{model}/bom")
def get_bom(model: str, services: ServicesDep,
            principal: Principal = Depends(require(Role.OPERATOR, Role.PARTNER))) -> list[dict[str, Any]]:
    """A product's bill of materials (partners: their own products)."""
    return services.ecosystem.supply.bom(model, caller=principal)


@router.get("/demand", responses={200: {"headers": paging.LINK_HEADER}})
def demand(request: Request, response: Response, services: ServicesDep, stage: list[str] = Query(["launched"]),
           limit: Limit = 100, cursor: CursorParam = None, _: Principal = Operator) -> list[dict[str, Any]]:
    """Annual units per component across all partners' products at the given stages, most units first; a `Link`
    header names the next page."""
    after = None
    if cursor is not None:
        position = paging.decode(cursor)
        after = (paging.field(position, "u", int), paging.field(position, "p", str))
    rows = services.ecosystem.supply.demand(stages=stage, limit=limit + 1, after=after)
    return paging.page(request, response, rows, limit=limit,
                       position_of=lambda last: {"u": last["annual_units"], "p": last["part_no"]})
