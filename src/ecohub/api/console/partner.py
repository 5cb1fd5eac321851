"""The partner's view: its own products, their certification reports, and pseudonymous fleet counts."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ecohub.api.console.common import ConsoleRoute, partner_only, render
from ecohub.api.console.ecosystem import spec_view
from ecohub.api.console.fleet import fleet_rows, fleet_summary
from ecohub.api.deps import ServicesDep
from ecohub.auth import Principal

router = APIRouter(route_class=ConsoleRoute)


@router.get("/partner", response_class=HTMLResponse)
def partner_home(request: Request, services: ServicesDep, principal: Principal = Depends(partner_only)) -> HTMLResponse:
    """Products of the signed-in partner with certification reports and fleet counts (no device ids, no users)."""
    pid = principal.partner_id
    info = services.ecosystem.partners.get(pid) if pid else None
    products = services.products.list(partner_id=pid, limit=500)
    reports = {p.model: services.certification.list(p.model, limit=5) for p in products}
    summary = fleet_summary(fleet_rows(services, partner_id=pid))
    return render(request, "partner/home.html", principal, partner=info, products=products, reports=reports,
                  summary=summary)


@router.get("/partner/products/{model}", response_class=HTMLResponse)
def partner_product(model: str, request: Request, services: ServicesDep,
                    principal: Principal = Depends(partner_only)) -> HTMLResponse:
    """One of the partner's products: spec browser, lifecycle, certification reports."""
    view = services.products.get(model, caller=principal)
    return render(request, "operator/product.html", principal, product=view, services_=spec_view(services, model),
                  history=services.products.history(model), reports=services.certification.list(model),
                  listings=services.ecosystem.listings.list(model=model),
                  evidence=services.certification.evidence.list(model, caller=principal),
                  closed=services.products.why_closed(model, view.spec_hash, list(view.target_markets)),
                  designs=services.ecosystem.designs.list(model, caller=principal),
                  pricing=services.ecosystem.pricing.report(model, caller=principal))
