"""HTTP routes of industrial-design records: partners upload versions, the brand approves or rejects them."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from ecohub.api.deps import OperatorDep, ServicesDep, StaffDep
from ecohub.ecosystem.design import KINDS

router = APIRouter(tags=["designs"])
DesignNo = Annotated[int, Path(ge=1, le=2**31 - 1, description="the design version")]


class DecisionIn(BaseModel):
    """Why the brand approves or rejects a design version."""

    note: str = Field(default="", max_length=2000)


@router.post("/products/{model}/designs", status_code=201,
             openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
                 "schema": {"type": "string", "format": "binary"}}}}})
async def upload_design(model: str, request: Request, services: ServicesDep, principal: StaffDep,
                        filename: str = Query(..., max_length=200, examples=["front.png"]),
                        kind: str | None = Query(None, description=f"one of {', '.join(KINDS)} (default from the "
                                                 "file)"),
                        note: str = Query("", max_length=2000)) -> dict[str, Any]:
    """Upload a new design version as the raw request body (a PNG/JPEG/WebP render, PDF drawing or STEP/STL/glTF
    CAD file, whatever its Content-Type; up to the API's body limit); the product's partner or the brand uploads,
    and it waits for the brand's approval."""
    data = await request.body()
    result: dict[str, Any] = await run_in_threadpool(
        services.ecosystem.designs.upload, model, data, filename=filename, kind=kind, note=note,
        actor=principal.actor, caller=principal)
    return result


@router.get("/products/{model}/designs")
def list_designs(model: str, services: ServicesDep, principal: StaffDep) -> list[dict[str, Any]]:
    """Every design version of a product, newest first, with its review status."""
    return services.ecosystem.designs.list(model, caller=principal)


@router.get("/products/{model}/designs/{version}/file")
def design_file(model: str, version: DesignNo, services: ServicesDep,
                principal: StaffDep) -> Response:
    """The file of one design version, as uploaded."""
    meta, data = services.ecosystem.designs.file(model, version, caller=principal)
    return Response(data, media_type=meta["media_type"],
                    headers={"Content-Disposition": f'attachment; filename="{meta["filename"]}"'})


@router.post("/products/{model}/designs/{version}/approve")
def approve_design(model: str, version: DesignNo, body: DecisionIn, services: ServicesDep,
                   principal: OperatorDep) -> dict[str, Any]:
    """The brand approves a pending design version (audited)."""
    return services.ecosystem.designs.decide(model, approve=True, version=version, note=body.note,
                                             actor=principal.actor, caller=principal)


@router.post("/products/{model}/designs/{version}/reject")
def reject_design(model: str, version: DesignNo, body: DecisionIn, services: ServicesDep,
                  principal: OperatorDep) -> dict[str, Any]:
    """The brand rejects a pending design version (audited); the partner uploads a new one."""
    return services.ecosystem.designs.decide(model, approve=False, version=version, note=body.note,
                                             actor=principal.actor, caller=principal)

