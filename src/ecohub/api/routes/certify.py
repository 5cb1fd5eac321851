"""REST: a product's certification reports (summary per report), one report as signed JSON or as its HTML page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import HTMLResponse

from ecohub.api.deps import ServicesDep, require
from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from ecohub.certify.report import render_html

router = APIRouter(tags=["certification"])
OperatorOrPartner = Depends(require(Role.OPERATOR, Role.PARTNER))


def _summary(services: Services, doc: dict[str, Any], current_spec_hash: str | None) -> dict[str, Any]:
    """What a listing shows of one report: its verdicts per market and whether it still counts."""
    full = services.certification.verify(doc)  # signature, expiry and the product's current spec
    return {"report_id": doc.get("report_id"), "created": doc.get("issued_at"), "expires_at": doc.get("expires_at"),
            "spec_hash": doc.get("spec_hash"), "spec_current": doc.get("spec_hash") == current_spec_hash,
            "passed": bool(doc.get("passed")),
            "markets": {m.get("market"): "pass" if m.get("passed") else "fail" for m in doc.get("markets", [])},
            "signature_valid": full.signature_ok and full.trusted,
            "valid": full.valid, "problems": list(full.problems)}


def _report_for(services: Services, principal: Principal, report_id: str) -> dict[str, Any]:
    """A stored report; partners only for their own products (an unknown product counts as not theirs)."""
    doc = services.certification.get(report_id)
    services.products.check_access(principal, doc.get("model"))
    return doc


@router.get("/products/{model}/certification")
def product_reports(model: str, services: ServicesDep, limit: int = Query(50, ge=1, le=500),
                    principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """The product's certification reports, newest first: created, spec hash, pass/fail per market, signature."""
    product = services.products.get(model, caller=principal)
    rows = services.certification.list(model, limit=limit)
    reports = [_summary(services, services.certification.get(r["report_id"]), product.spec_hash) for r in rows]
    gate = sorted(services.certification.passing_markets(model, product.spec_hash))
    return {"model": model, "spec_hash": product.spec_hash, "passing_markets": gate, "reports": reports}


@router.get("/certification/reports/{report_id}.html", response_class=HTMLResponse)
def report_html(report_id: str, services: ServicesDep,
                principal: Principal = OperatorOrPartner) -> HTMLResponse:
    """One report as its readable HTML page."""
    return HTMLResponse(render_html(_report_for(services, principal, report_id)))


@router.get("/certification/reports/{report_id}")
def report_json(report_id: str, services: ServicesDep,
                principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """One report: the signed JSON document exactly as issued (verify it with `ecohub certify verify`)."""
    return _report_for(services, principal, report_id)
