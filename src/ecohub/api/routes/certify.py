"""REST: a product's certification reports (summary per report), one report as signed JSON or as its HTML page."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field

from ecohub.api import paging
from ecohub.api.deps import RowId, ServicesDep, require
from ecohub.api.paging import CursorParam
from ecohub.auth import Principal, Role
from ecohub.bootstrap import Services
from ecohub.certify.domain import EVIDENCE_TEXT_MAX, MAX_EVIDENCE_BYTES
from ecohub.certify.report import render_html
from ecohub.errors import ErrorCode, InvalidInput, PayloadTooLarge

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


@router.get("/products/{model}/certification", responses={200: {"headers": paging.LINK_HEADER}})
def product_reports(request: Request, response: Response, model: str, services: ServicesDep,
                    limit: int = Query(50, ge=1, le=500), cursor: CursorParam = None,
                    principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """The product's certification reports, newest first: created, spec hash, pass/fail per market, signature.

    A `Link: <…>; rel="next"` header names the page of older reports when more remain."""
    product = services.products.get(model, caller=principal)
    before = None
    if cursor is not None:
        position = paging.decode(cursor)
        try:
            issued = datetime.fromisoformat(paging.field(position, "t", str))
        except ValueError as err:
            raise InvalidInput("the cursor is not one this API issued", code=ErrorCode.INVALID_CURSOR) from err
        before = (issued, paging.field(position, "r", str))
    rows = paging.page(request, response, services.certification.list(model, limit=limit + 1, before=before),
                       limit=limit, position_of=lambda last: {"t": last["issued_at"], "r": last["report_id"]})
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


Text = Form(..., max_length=EVIDENCE_TEXT_MAX)


@router.get("/products/{model}/evidence")
def list_evidence(model: str, services: ServicesDep, principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """The product's certificates and lab reports, newest first, each with whether it counts today, and the gate:
    per target market, why it does not open (markets that open are not named)."""
    items = services.certification.evidence.list(model, caller=principal)
    product = services.products.get(model, caller=principal)
    closed = services.products.why_closed(model, product.spec_hash, list(product.target_markets))
    return {"model": model, "evidence": items, "closed_markets": closed}


@router.post("/products/{model}/evidence", status_code=201)
async def add_evidence(model: str, services: ServicesDep, file: UploadFile = File(...,
                       description=f"the certificate or lab report (at most {MAX_EVIDENCE_BYTES} bytes)"),
                       market: str = Form(..., max_length=2), regime: str = Form(..., max_length=32),
                       issuer: str = Text, number: str = Text, valid_until: date = Form(...),
                       valid_from: date | None = Form(None), scope: str = Form("", max_length=EVIDENCE_TEXT_MAX),
                       principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Record a certificate or lab report for one regime of a market (multipart: the fields and the file). An
    operator's counts at once; a partner's (its own products only) waits for the brand's acceptance."""
    content = await file.read(MAX_EVIDENCE_BYTES + 1)
    if len(content) > MAX_EVIDENCE_BYTES:
        raise PayloadTooLarge(f"the evidence file exceeds {MAX_EVIDENCE_BYTES} bytes",
                              code=ErrorCode.EVIDENCE_TOO_LARGE)
    return await run_in_threadpool(
        services.certification.evidence.add,
        model, market=market, regime=regime, issuer=issuer, number=number, valid_until=valid_until,
        valid_from=valid_from, scope=scope, file_name=file.filename or "evidence", content=content, caller=principal)


@router.get("/products/{model}/evidence/{evidence_id}/file")
def evidence_file(model: str, evidence_id: RowId, services: ServicesDep,
                  principal: Principal = OperatorOrPartner) -> FileResponse:
    """The stored file of one piece of evidence."""
    name, path = services.certification.evidence.file(evidence_id, model=model, caller=principal)
    return FileResponse(path, filename=name, media_type="application/octet-stream")


class RevokeIn(BaseModel):
    """Why the brand withdraws a piece of evidence."""

    reason: str = Field(min_length=1, max_length=EVIDENCE_TEXT_MAX)


@router.post("/products/{model}/evidence/{evidence_id}/accept")
def accept_evidence(model: str, evidence_id: RowId, services: ServicesDep,
                    principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """The brand accepts a partner's submission (operators only)."""
    return services.certification.evidence.accept(evidence_id, model=model, caller=principal)


@router.post("/products/{model}/evidence/{evidence_id}/revoke")
def revoke_evidence(model: str, evidence_id: RowId, body: RevokeIn, services: ServicesDep,
                    principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """The brand revokes a piece of evidence (operators only): listings relying on it are suspended."""
    return services.certification.evidence.revoke(evidence_id, reason=body.reason, model=model, caller=principal)
