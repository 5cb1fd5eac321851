"""HTTP routes of the fleet security audit (operator only): findings, decisions, vulnerable firmware, runs."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from ecohub.api.deps import Limit, Offset, OperatorDep, ServicesDep
from ecohub.security.checks import CHECKS

router = APIRouter(tags=["security"])


class DecisionIn(BaseModel):
    """Why the operator acknowledges or suppresses a finding (kept with it and in the audit log)."""

    reason: str = Field(min_length=1, max_length=2000, examples=["replacement units ship next week"])


class VulnerableIn(BaseModel):
    """A firmware version of a model that has a known vulnerability."""

    model: str = Field(examples=["acme.plug.v1"])
    version: str = Field(min_length=1, max_length=64, examples=["1.2.0"])
    reason: str = Field(min_length=1, max_length=2000, examples=["CVE-2026-12345: unauthenticated OTA"])


@router.get("/security/checks")
def checks(principal: OperatorDep) -> list[dict[str, str]]:
    """The audit's checks: id (the findings' `kind`), severity, description, whether they judge devices or
    products."""
    return [c.to_dict() for c in CHECKS]


@router.post("/security/audit")
async def run_audit(services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Run the audit now: → how many findings were opened, refreshed and resolved."""
    await services.security.recorder.flush()  # what the callout saw until now counts
    return await asyncio.to_thread(services.security.service.audit)


@router.get("/security/findings")
def findings(services: ServicesDep, principal: OperatorDep, severity: str | None = None, kind: str | None = None,
             status: str | None = None, limit: Limit = 100, offset: Offset = 0) -> list[dict[str, Any]]:
    """Findings, most severe and most recent first; filter by severity (critical|high|medium|low), kind (a
    check id) and status (open|acknowledged|suppressed|resolved)."""
    return services.security.service.findings(caller=principal, severity=severity, kind=kind, status=status,
                                              limit=limit, offset=offset)


@router.get("/security/findings/{finding_id}")
def finding(finding_id: str, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """One finding."""
    return services.security.service.get(finding_id, caller=principal)


@router.post("/security/findings/{finding_id}:acknowledge")
def acknowledge_finding(finding_id: str, body: DecisionIn, services: ServicesDep,
                        principal: OperatorDep) -> dict[str, Any]:
    """Acknowledge a finding (seen, being handled) with a reason; audited."""
    return services.security.service.decide(finding_id, "acknowledge", reason=body.reason, caller=principal)


@router.post("/security/findings/{finding_id}:suppress")
def suppress_finding(finding_id: str, body: DecisionIn, services: ServicesDep,
                     principal: OperatorDep) -> dict[str, Any]:
    """Suppress a finding (accepted risk: not raised again for this subject) with a reason; audited."""
    return services.security.service.decide(finding_id, "suppress", reason=body.reason, caller=principal)


@router.get("/security/vulnerable-firmware")
def vulnerable(services: ServicesDep, principal: OperatorDep) -> list[dict[str, Any]]:
    """Firmware versions marked vulnerable."""
    return services.security.service.vulnerable_firmware(caller=principal)


@router.post("/security/vulnerable-firmware", status_code=201)
def mark_vulnerable(body: VulnerableIn, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Mark a firmware version of a model vulnerable (audited); the next audit raises a critical finding for each
    device whose twin reports it."""
    return services.security.service.mark_vulnerable(body.model, body.version, reason=body.reason, caller=principal)
