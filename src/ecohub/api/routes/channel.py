"""HTTP routes of markets, categories, listings, catalogue queries and KPIs."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from ecohub.api import paging
from ecohub.api.deps import Limit, Offset, RowId, ServicesDep, require
from ecohub.api.paging import CursorParam
from ecohub.auth import Principal, Role
from ecohub.ecosystem.domain import Availability

router = APIRouter(tags=["channel"])
Operator = Depends(require(Role.OPERATOR))
OperatorOrPartner = Depends(require(Role.OPERATOR, Role.PARTNER))


class ListingIn(BaseModel):
    """A listing: price in the market's currency."""

    model: str
    market: str
    price: Decimal
    sku: str | None = None
    currency: str | None = None
    availability: Availability = Availability.IN_STOCK
    price_override: str | None = Field(None, max_length=500, description="the reason to list outside the pricing "
                                       "policy (operator only; audited)")


class ListingPatch(BaseModel):
    """A change of price or availability."""

    price: Decimal | None = None
    availability: Availability | None = None
    price_override: str | None = Field(None, max_length=500, description="the reason for a price outside the "
                                       "pricing policy (audited)")


@router.get("/markets")
def list_markets(services: ServicesDep, cell: str | None = None, region: str | None = None,
                 _: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """The markets with currency, language, cell and certification profile."""
    return services.ecosystem.markets.list(cell=cell, region=region)


@router.get("/markets/{code}")
def get_market(code: str, services: ServicesDep,
               _: Principal = OperatorOrPartner) -> dict[str, Any]:
    """One market."""
    return services.ecosystem.markets.get(code)


@router.get("/categories")
def categories(services: ServicesDep, _: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """The category taxonomy with product counts."""
    return services.ecosystem.catalogue.categories()


@router.post("/listings", status_code=201)
def add_listing(body: ListingIn, services: ServicesDep,
                principal: Principal = Operator) -> dict[str, Any]:
    """List an approved product in a market it is certified for."""
    return services.ecosystem.listings.add(body.model, body.market, price=body.price, sku=body.sku,
                                           currency=body.currency, availability=body.availability,
                                           actor=principal.actor, price_override=body.price_override)


@router.get("/listings", responses={200: {"headers": paging.LINK_HEADER}})
def list_listings(request: Request, response: Response, services: ServicesDep, model: str | None = None,
                  market: str | None = None, partner_id: str | None = None, availability: str | None = None,
                  limit: Limit = 1000, offset: Offset = 0, cursor: CursorParam = None,
                  principal: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """Listings (partners see their own products' listings); a `Link` header names the next page."""
    start = paging.offset_of(cursor, offset)
    rows = services.ecosystem.listings.list(model=model, market=market, partner_id=partner_id,
                                            availability=availability, limit=limit + 1, offset=start,
                                            caller=principal)
    return paging.offset_page(request, response, rows, limit=limit, start=start)


@router.patch("/listings/{listing_id}")
def update_listing(listing_id: RowId, body: ListingPatch, services: ServicesDep,
                   principal: Principal = Operator) -> dict[str, Any]:
    """Change a listing's price or availability."""
    return services.ecosystem.listings.update(listing_id, price=body.price, availability=body.availability,
                                              actor=principal.actor, price_override=body.price_override)


@router.get("/listings/{listing_id}")
def get_listing(listing_id: RowId, services: ServicesDep,
                principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """One listing."""
    return services.ecosystem.listings.get(listing_id, caller=principal)


@router.get("/catalogue")
def catalogue(services: ServicesDep, category: str | None = None, family: str | None = None,
              market: str | None = None, partner_id: str | None = None, stage: str | None = None,
              q: str | None = None, limit: Limit = 100, offset: Offset = 0,
              principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Products by category, family, market (listed there), partner, stage or text."""
    return services.ecosystem.catalogue.search(category=category, family=family, market=market,
                                               partner_id=partner_id, stage=stage, text=q,
                                               limit=min(limit, 1000), offset=offset, caller=principal)


@router.get("/catalogue/counts")
def catalogue_counts(services: ServicesDep, by: str = "category", stage: str | None = None,
                     principal: Principal = OperatorOrPartner) -> dict[str, int]:
    """Number of products per category, family, stage, partner or market."""
    return services.ecosystem.catalogue.counts(by, stage=stage, caller=principal)


@router.get("/kpis")
def kpis(services: ServicesDep, _: Principal = Operator) -> dict[str, Any]:
    """The operator's KPIs."""
    return services.ecosystem.kpis.all()
