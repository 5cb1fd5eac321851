"""Operator views of the ecosystem: overview, partners, products with their spec, markets and listings."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ecohub.api.console.common import ConsoleRoute, home_path, operator_only, render, session_principal
from ecohub.api.deps import ServicesDep
from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from ecohub.errors import ErrorCode, NotFound

router = APIRouter(route_class=ConsoleRoute)
PAGE = 50


def _epoch_s(day: str) -> int:
    d = date.fromisoformat(day)
    return int((d - date(1970, 1, 1)).total_seconds())


def portfolio_series(history: list[dict[str, Any]]) -> dict[str, Any]:
    """The portfolio history as chart columns: x (unix s) and one series per currency."""
    currencies = sorted({c for h in history for c in h["total"]})
    return {"x": [_epoch_s(h["date"]) for h in history],
            "series": [{"label": c, "values": [float(h["total"][c]) if c in h["total"] else None for h in history]}
                       for c in currencies]}


def bars(counts: dict[str, int]) -> list[dict[str, Any]]:
    """Counts as labelled bars with a width in percent of the largest."""
    top = max(counts.values(), default=0) or 1
    return [{"label": k, "count": v, "pct": round(100 * v / top, 1)} for k, v in counts.items()]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, services: ServicesDep, principal: Principal = Depends(session_principal)) -> Response:
    """Ecosystem overview: partners by stage, portfolio value over time, products per stage, markets covered."""
    if principal.role != Role.OPERATOR:
        return RedirectResponse(home_path(principal), status_code=303)
    kpis = services.ecosystem.kpis.all()
    markets = services.ecosystem.markets.list()
    per_market = services.ecosystem.catalogue.counts("market")
    by_stage = dict(sorted(kpis["partners_by_stage"].items(), key=lambda kv: -kv[1]))
    covered = [{**m, "products": per_market.get(m["code"], 0)} for m in markets]
    return render(request, "operator/overview.html", principal, kpis=kpis, partner_bars=bars(by_stage),
                  product_bars=bars(kpis["products_by_stage"]), portfolio=portfolio_series(kpis["portfolio_history"]),
                  markets=covered, markets_covered=sum(1 for m in covered if m["products"]),
                  partners_total=sum(by_stage.values()), products_total=sum(kpis["products_by_stage"].values()),
                  devices_total=sum(kpis["devices_by_partner"].values()))


@router.get("/partners", response_class=HTMLResponse)
def partners(request: Request, services: ServicesDep, stage: str | None = None, page: int = Query(0, ge=0),
             principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Partners, by stage."""
    rows = services.ecosystem.partners.list(stage=stage or None, limit=PAGE + 1, offset=page * PAGE)
    stages = sorted(services.ecosystem.partners.by_stage())
    return render(request, "operator/partners.html", principal, partners=rows[:PAGE], more=len(rows) > PAGE,
                  page=page, stage=stage or "", stages=stages)


@router.get("/partners/{partner_id}", response_class=HTMLResponse)
def partner(partner_id: str, request: Request, services: ServicesDep,
            principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """A partner: rounds, the brand's stake over time, cap table, products."""
    eco = services.ecosystem
    info = eco.partners.get(partner_id)
    cap = eco.partners.cap_table(partner_id)
    products = services.products.list(partner_id=partner_id, limit=200)
    rounds = info["rounds"]
    stake = {"x": [_epoch_s(r["closed_on"]) for r in rounds],
             "series": [{"label": "brand stake %", "values": [float(r["brand_stake_percent"]) for r in rounds]}]}
    return render(request, "operator/partner.html", principal, partner=info, cap=cap, products=products,
                  chart=stake)


@router.get("/products", response_class=HTMLResponse)
def products(request: Request, services: ServicesDep, stage: str | None = None, category: str | None = None,
             page: int = Query(0, ge=0), principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Products, by lifecycle stage and category."""
    rows = services.products.list(stage=stage or None, category=category or None, limit=PAGE + 1, offset=page * PAGE)
    stages = list(services.ecosystem.kpis.all()["products_by_stage"])
    return render(request, "operator/products.html", principal, products=rows[:PAGE], more=len(rows) > PAGE,
                  page=page, stage=stage or "", category=category or "", stages=stages)


def spec_view(services: Services, model: str) -> list[dict[str, Any]]:
    """The product spec as services with properties, actions and events (for the spec browser)."""
    spec = services.products.compiled(model).spec
    out = []
    for s in spec.services:
        out.append({
            "iid": s.iid, "name": s.name, "description": s.description, "type": s.type,
            "properties": [{"key": p.key, "name": p.name, "description": p.description, "format": p.format,
                            "access": sorted(a.value for a in p.access), "unit": p.unit,
                            "range": p.value_range, "values": p.value_list} for p in s.properties],
            "actions": [{"key": f"{a.siid}.{a.iid}", "name": a.name, "description": a.description,
                         "in": list(a.in_), "out": list(a.out)} for a in s.actions],
            "events": [{"key": f"{e.siid}.{e.iid}", "name": e.name, "description": e.description,
                        "arguments": list(e.arguments)} for e in s.events],
        })
    return out


@router.get("/products/{model}", response_class=HTMLResponse)
def product(model: str, request: Request, services: ServicesDep,
            principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """A product: facts, spec browser, lifecycle history, certification reports, listings."""
    view = services.products.get(model)
    return render(request, "operator/product.html", principal, product=view, services_=spec_view(services, model),
                  history=services.products.history(model), reports=services.certification.list(model),
                  listings=services.ecosystem.listings.list(model=model),
                  evidence=services.certification.evidence.list(model, caller=principal),
                  closed=services.products.why_closed(model, view.spec_hash, list(view.target_markets)),
                  designs=services.ecosystem.designs.list(model), pricing=services.ecosystem.pricing.report(model))


@router.post("/products/{model}/designs/{version}/{decision}")
def decide_design(model: str, version: int, decision: str, request: Request, services: ServicesDep,
                  note: str = Form(""), principal: Principal = Depends(operator_only)) -> Response:
    """The brand approves or rejects a design version from the product page (audited, like the API)."""
    if decision not in ("approve", "reject"):
        raise NotFound(f"no decision {decision!r}", code=ErrorCode.NOT_FOUND)
    services.ecosystem.designs.decide(model, approve=decision == "approve", version=version, note=note,
                                      actor=principal.actor, caller=principal)
    return RedirectResponse(f"/console/products/{model}#designs", status_code=303)


@router.get("/markets", response_class=HTMLResponse)
def markets(request: Request, services: ServicesDep, principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Markets with their cell, currency, certification profile and how many products are listed."""
    per_market = services.ecosystem.catalogue.counts("market")
    rows = [{**m, "products": per_market.get(m["code"], 0)} for m in services.ecosystem.markets.list()]
    return render(request, "operator/markets.html", principal, markets=rows)


@router.get("/listings", response_class=HTMLResponse)
def listings(request: Request, services: ServicesDep, market: str | None = None, model: str | None = None,
             page: int = Query(0, ge=0), principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Channel listings, by market or product."""
    rows = services.ecosystem.listings.list(market=market or None, model=model or None, limit=PAGE + 1,
                                            offset=page * PAGE)
    codes = [m["code"] for m in services.ecosystem.markets.list()]
    return render(request, "operator/listings.html", principal, listings=rows[:PAGE], more=len(rows) > PAGE,
                  page=page, market=market or "", model=model or "", codes=codes)
