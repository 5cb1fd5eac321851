"""HTTP routes of partners: registry, rounds, cap table, exits and the portfolio."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from ecohub.api import paging
from ecohub.api.deps import Limit, Offset, ServicesDep, require
from ecohub.api.paging import CursorParam
from ecohub.auth import Principal, Role
from ecohub.ecosystem.domain import ExitKind, PartnerKind

router = APIRouter(tags=["partners"])


class PartnerIn(BaseModel):
    """A partner company or developer (the contact is a business role address)."""

    name: str = Field(examples=["Ninebot"])
    id: str | None = Field(None, examples=["ninebot"])
    kind: PartnerKind = PartnerKind.ECOSYSTEM
    country: str = Field(examples=["CN"])
    founded_on: date
    contact_role: str = ""
    contact_email: str = ""


class RoundIn(BaseModel):
    """A round: amounts in `currency`; the brand's stake after it is computed, never sent."""

    series: str = Field(examples=["series_a"])
    closed_on: date
    pre_money: Decimal = Field(examples=["80000000"])
    raised: Decimal = Field(examples=["20000000"])
    brand_amount: Decimal = Field(Decimal(0), examples=["5000000"])
    currency: str = "USD"
    override_reason: str | None = Field(None, description="needed when the brand would reach 50% or more")


class ExitIn(BaseModel):
    """An IPO or acquisition."""

    kind: ExitKind
    exited_on: date
    valuation: Decimal
    currency: str = "USD"
    venue: str = ""


Operator = Depends(require(Role.OPERATOR))
OperatorOrPartner = Depends(require(Role.OPERATOR, Role.PARTNER))


@router.post("/partners", status_code=201)
def add_partner(body: PartnerIn, services: ServicesDep,
                principal: Principal = Operator) -> dict[str, Any]:
    """Register a partner."""
    return services.ecosystem.partners.add(
        name=body.name, partner_id=body.id, kind=body.kind, country=body.country, founded_on=body.founded_on,
        contact_role=body.contact_role, contact_email=body.contact_email, actor=principal.actor)


@router.get("/partners", responses={200: {"headers": paging.LINK_HEADER}})
def list_partners(request: Request, response: Response, services: ServicesDep, kind: str | None = None,
                  stage: str | None = None, country: str | None = None, limit: Limit = 1000, offset: Offset = 0,
                  cursor: CursorParam = None, principal: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """Partners (a partner sees only itself); a `Link` header names the next page."""
    start = paging.offset_of(cursor, offset)
    rows = services.ecosystem.partners.list(kind=kind, stage=stage, country=country, limit=limit + 1, offset=start,
                                            caller=principal)
    return paging.offset_page(request, response, rows, limit=limit, start=start)


@router.get("/partners/{partner_id}")
def get_partner(partner_id: str, services: ServicesDep,
                principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """A partner with its rounds and exit."""
    return services.ecosystem.partners.get(partner_id, caller=principal)


@router.post("/partners/{partner_id}/rounds", status_code=201)
def add_round(partner_id: str, body: RoundIn, services: ServicesDep,
              principal: Principal = Operator) -> dict[str, Any]:
    """Record a round (refused with 409 `minority_rule` at >= 50% unless `override_reason` is given)."""
    return services.ecosystem.partners.add_round(
        partner_id, series=body.series, closed_on=body.closed_on, pre_money=body.pre_money, raised=body.raised,
        brand_amount=body.brand_amount, currency=body.currency, override_reason=body.override_reason,
        actor=principal.actor)


@router.get("/partners/{partner_id}/rounds")
def list_rounds(partner_id: str, services: ServicesDep,
                principal: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """Rounds of a partner, oldest first."""
    return services.ecosystem.partners.rounds(partner_id, caller=principal)


@router.get("/partners/{partner_id}/cap-table")
def cap_table(partner_id: str, services: ServicesDep,
              principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Every holder's stake after each round, computed from the rounds."""
    return services.ecosystem.partners.cap_table(partner_id, caller=principal)


@router.post("/partners/{partner_id}/exits", status_code=201)
def record_exit(partner_id: str, body: ExitIn, services: ServicesDep,
                principal: Principal = Operator) -> dict[str, Any]:
    """Record an IPO or acquisition."""
    return services.ecosystem.partners.record_exit(
        partner_id, kind=body.kind, exited_on=body.exited_on, valuation=body.valuation, currency=body.currency,
        venue=body.venue, actor=principal.actor)


@router.get("/portfolio")
def portfolio(services: ServicesDep, _: Principal = Operator) -> dict[str, Any]:
    """Stake * latest valuation per partner and in total (per currency)."""
    return services.ecosystem.partners.portfolio()


@router.get("/portfolio/history")
def portfolio_history(services: ServicesDep, _: Principal = Operator) -> list[dict[str, Any]]:
    """Total portfolio value after each round or exit date."""
    return services.ecosystem.partners.portfolio_history()


@router.get("/stake-overrides")
def stake_overrides(services: ServicesDep, partner_id: str | None = None, _: Principal = Operator) -> list[dict[str,
                    Any]]:
    """The audited exceptions to the minority-stake rule."""
    return services.ecosystem.partners.overrides(partner_id)
