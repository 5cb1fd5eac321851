"""Operator views of the ecosystem: overview, partners, products with their spec, markets and listings."""

from __future__ import annotations

from datetime import date
from typing import Any
from urllib.parse import quote_plus

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ecohub.api import i18n
from ecohub.api.console.common import ConsoleRoute, home_path, operator_only, render, session_principal
from ecohub.api.console.words import word
from ecohub.api.deps import ServicesDep
from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from ecohub.ecosystem.domain import Availability
from ecohub.errors import ErrorCode, NotFound
from ecohub.spec.labels import property_labels, type_label, unit_symbol

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
    return [{"label": word(k), "key": k, "count": v, "pct": round(100 * v / top, 1)} for k, v in counts.items()]


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


def search_sort(rows: list[dict[str, Any]], *, q: str, fields: tuple[str, ...], sort: str,
                allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    """Rows whose fields contain `q` (any case), sorted by `sort` (`-name`: descending) if it is an allowed column."""
    needle = q.strip().lower()
    if needle:
        rows = [r for r in rows if any(needle in str(r.get(f) or "").lower() for f in fields)]
    key = sort.lstrip("-")
    if key in allowed:
        rows = sorted(rows, key=lambda r: (r.get(key) is None, r.get(key) if isinstance(r.get(key), int | float)
                                           else str(r.get(key) or "").lower()), reverse=sort.startswith("-"))
    return rows


def query_string(**params: Any) -> str:
    """A bookmarkable query string of the non-empty filters, ending in '&' for the pager to append to."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return "?" + "".join(f"{k}={quote_plus(str(v))}&" for k, v in kept.items())


@router.get("/partners", response_class=HTMLResponse)
def partners(request: Request, services: ServicesDep, stage: str | None = None, q: str = "", sort: str = "name",
             page: int = Query(0, ge=0), principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Partners: search by name, id or country, filter by stage, sort by a column (all in the URL)."""
    rows = search_sort(services.ecosystem.partners.list(stage=stage or None, limit=10_000), q=q,
                       fields=("name", "id", "country"), sort=sort,
                       allowed=("name", "kind", "country", "stage", "founded_on"))
    stages = sorted(services.ecosystem.partners.by_stage())
    return render(request, "operator/partners.html", principal, partners=rows[page * PAGE:(page + 1) * PAGE],
                  more=len(rows) > (page + 1) * PAGE, total=len(rows), page=page, stage=stage or "", stages=stages,
                  q=q, sort=sort, base=query_string(stage=stage, q=q, sort=sort))


@router.get("/partners/{partner_id}", response_class=HTMLResponse)
def partner(partner_id: str, request: Request, services: ServicesDep,
            principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """A partner: rounds, the brand's stake over time, cap table, products."""
    eco = services.ecosystem
    info = eco.partners.get(partner_id)
    cap = eco.partners.cap_table(partner_id)
    products = services.products.list(partner_id=partner_id, limit=200)
    rounds = info["rounds"]
    # a stake holds from one round to the next: drawn as steps, the last one lasting until today
    xs = [_epoch_s(r["closed_on"]) for r in rounds]
    ys = [float(r["brand_stake_percent"]) for r in rounds]
    if xs and xs[-1] < _epoch_s(date.today().isoformat()):
        xs.append(_epoch_s(date.today().isoformat()))
        ys.append(ys[-1])
    stake = {"x": xs, "series": [{"label": i18n.gettext("Brand stake in percent"), "values": ys}]}
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
        labels = property_labels(s)
        out.append({
            "iid": s.iid, "name": s.name, "description": s.description, "type": s.type,
            "label": i18n.gettext(type_label(s.type, s.description)),
            "properties": [{"key": p.key, "name": p.name, "description": p.description, "format": p.format,
                            "label": i18n.gettext(labels[p.key]), "unit_symbol": unit_symbol(p.unit),
                            "access": sorted(a.value for a in p.access), "unit": p.unit,
                            "range": p.value_range, "values": p.value_list} for p in s.properties],
            "actions": [{"key": f"{a.siid}.{a.iid}", "name": a.name, "description": a.description,
                         "label": i18n.gettext(type_label(a.type, a.description)),
                         "in": list(a.in_), "out": list(a.out)} for a in s.actions],
            "events": [{"key": f"{e.siid}.{e.iid}", "name": e.name, "description": e.description,
                        "label": i18n.gettext(type_label(e.type, e.description)),
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


@router.post("/products/{model}/evidence/{evidence_id}/{decision}")
def decide_evidence(model: str, evidence_id: int, decision: str, services: ServicesDep, reason: str = Form(""),
                    principal: Principal = Depends(operator_only)) -> Response:
    """The brand accepts a partner's submitted evidence or revokes a piece of evidence (with a reason) from the
    product page, like the API; the listings that relied on revoked evidence leave sale."""
    if decision == "accept":
        services.certification.evidence.accept(evidence_id, model=model, caller=principal)
    elif decision == "revoke":
        services.certification.evidence.revoke(evidence_id, reason=reason, model=model, caller=principal)
    else:
        raise NotFound(f"no decision {decision!r}", code=ErrorCode.NOT_FOUND)
    return RedirectResponse(f"/console/products/{model}#ev-h", status_code=303)


@router.get("/markets", response_class=HTMLResponse)
def markets(request: Request, services: ServicesDep, q: str = "", region: str = "", sort: str = "code",
            principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Markets with their cell, currency, certification profile and products listed: searchable and sortable."""
    per_market = services.ecosystem.catalogue.counts("market")
    every = [{**m, "products": per_market.get(m["code"], 0)} for m in services.ecosystem.markets.list()]
    rows = search_sort([m for m in every if not region or m["region"] == region], q=q,
                       fields=("code", "name", "currency"), sort=sort,
                       allowed=("code", "name", "region", "cell", "currency", "products"))
    return render(request, "operator/markets.html", principal, markets=rows, total=len(every), q=q, sort=sort,
                  region=region, regions=sorted({m["region"] for m in every}),
                  base=query_string(q=q, region=region, sort=sort))


@router.get("/listings", response_class=HTMLResponse)
def listings(request: Request, services: ServicesDep, market: str | None = None, model: str | None = None,
             availability: str | None = None, page: int = Query(0, ge=0),
             principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Channel listings, by market, product or availability (the filters are the URL: bookmarkable)."""
    rows = services.ecosystem.listings.list(market=market or None, model=model or None,
                                            availability=availability or None, limit=PAGE + 1, offset=page * PAGE)
    codes = [m["code"] for m in services.ecosystem.markets.list()]
    return render(request, "operator/listings.html", principal, listings=rows[:PAGE], more=len(rows) > PAGE,
                  page=page, market=market or "", model=model or "", availability=availability or "",
                  availabilities=[a.value for a in Availability], codes=codes,
                  base=query_string(market=market, model=model, availability=availability))
