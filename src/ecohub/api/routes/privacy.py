"""HTTP routes of privacy: the user's consents and requests, partners' fleet feed and notices, operators' DSR desk."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field

from ecohub.api.deps import ServicesDep, require
from ecohub.auth import Principal, Role
from ecohub.privacy.domain import DsrKind

router = APIRouter(tags=["privacy"])
user = require(Role.USER)
partner = require(Role.PARTNER)
operator = require(Role.OPERATOR)
CHUNK = 1024 * 1024
PasswordHeader = Header(None, alias="X-Password", description="the account password, again: proves it is you")


class ConsentIn(BaseModel):
    """Give or withdraw consent to one purpose, under the version of the text the user was shown."""

    purpose: str = Field(examples=["device_diagnostics_to_maker"])
    given: bool
    text_version: str = Field(max_length=32, examples=["2026-11"])


class RectifyIn(BaseModel):
    """A corrected email address, confirmed with the password."""

    email: str = Field(max_length=254)
    password: str = Field(max_length=256)


class ExtendIn(BaseModel):
    """Extend a request's deadline by two months, with the reason told to the subject."""

    cell: str
    reason: str = Field(min_length=1, max_length=500)


def _cell(p: Principal) -> str:
    assert p.cell is not None
    return p.cell


@router.get("/privacy/consents")
def consents(services: ServicesDep, principal: Principal = Depends(user)) -> dict[str, Any]:
    """The caller's current consent per purpose and the full ledger."""
    return services.privacy.consents.ledger(_cell(principal), principal.subject)


@router.post("/privacy/consents", status_code=201)
def record_consent(body: ConsentIn, services: ServicesDep, principal: Principal = Depends(user)) -> dict[str, Any]:
    """Give or withdraw consent; withdrawal applies to the very next partner read."""
    return services.privacy.consents.record(_cell(principal), principal.subject, purpose=body.purpose,
                                            given=body.given, text_version=body.text_version)


def stream_file(f: IO[bytes]) -> Iterator[bytes]:
    """A spooled file in chunks, closed at the end (the export zip)."""
    try:
        while chunk := f.read(CHUNK):
            yield chunk
    finally:
        f.close()


@router.get("/privacy/export", response_class=StreamingResponse)
def export(services: ServicesDep, password: str | None = PasswordHeader,
           principal: Principal = Depends(user)) -> StreamingResponse:
    """All the caller's data as a zip (JSON and CSV per store, raw telemetry included), streamed."""
    dsr = services.privacy.dsr
    cell = _cell(principal)
    dsr.verify_identity(cell, principal.subject, password, actor=principal.actor, kind=DsrKind.EXPORT)
    request, f = dsr.export(cell, principal.subject, actor=principal.actor)
    return StreamingResponse(stream_file(f), media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="ecohub-export-{request["request_id"]}.zip"',
        "X-Request-Id": request["request_id"]})


@router.delete("/privacy/me", status_code=202)
def erase(services: ServicesDep, password: str | None = PasswordHeader,
          principal: Principal = Depends(user)) -> JSONResponse:
    """Erase the caller's account and data: 202 {request_id, due, status, steps, receipt once complete}."""
    dsr = services.privacy.dsr
    cell = _cell(principal)
    dsr.verify_identity(cell, principal.subject, password, actor=principal.actor, kind=DsrKind.ERASURE)
    return JSONResponse(dsr.erase(cell, principal.subject, actor=principal.actor), status_code=202)


@router.patch("/privacy/me")
def rectify(body: RectifyIn, services: ServicesDep, principal: Principal = Depends(user)) -> dict[str, Any]:
    """Correct the caller's email (a rectification request, completed at once)."""
    dsr = services.privacy.dsr
    cell = _cell(principal)
    dsr.verify_identity(cell, principal.subject, body.password, actor=principal.actor, kind=DsrKind.RECTIFICATION)
    return dsr.rectify_email(cell, principal.subject, body.email, actor=principal.actor)


@router.get("/partner/fleet")
def fleet(services: ServicesDep, principal: Principal = Depends(partner)) -> dict[str, Any]:
    """Pseudonymous recent values of the partner's devices whose owners consent, and counts per model."""
    return services.privacy.partners.fleet(principal)


@router.get("/partner/erasures")
def erasure_notices(services: ServicesDep, principal: Principal = Depends(partner)) -> list[dict[str, Any]]:
    """Erasure notices to act on: pseudonymous device ids whose data the partner must delete."""
    return services.privacy.partners.notices(principal)


@router.post("/partner/erasures/{request_id}/ack")
def acknowledge(request_id: str, services: ServicesDep, principal: Principal = Depends(partner)) -> dict[str, Any]:
    """Confirm the partner erased what it received; the request completes once every store is done."""
    cell = services.privacy.partners.acknowledge(principal, request_id)
    services.privacy.audit.append(cell, actor=principal.actor, action="dsr.erasure.partner_ack",
                                  detail={"request_id": request_id})
    status = services.privacy.dsr.settle(cell, request_id)
    return {"request_id": request_id, "status": status["status"]}


@router.get("/privacy/requests")
def requests(cell: str, services: ServicesDep, status: str | None = None,
             principal: Principal = Depends(operator)) -> list[dict[str, Any]]:
    """Data-subject requests of a cell, nearest deadline first (operators)."""
    return services.privacy.dsr.list(services.dbs.check_cell(cell), status=status)


@router.post("/privacy/requests/{request_id}/extend")
def extend(request_id: str, body: ExtendIn, services: ServicesDep,
           principal: Principal = Depends(operator)) -> dict[str, Any]:
    """Extend a request's deadline by two months with a reason (operators)."""
    return services.privacy.dsr.extend(services.dbs.check_cell(body.cell), request_id, reason=body.reason,
                                       actor=principal.actor)
