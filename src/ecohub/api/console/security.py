"""Operator view of the fleet security audit: findings by severity and status."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from ecohub.api.console.common import ConsoleRoute, operator_only, render
from ecohub.api.deps import ServicesDep
from ecohub.api.i18n import N_
from ecohub.auth import Principal

router = APIRouter(route_class=ConsoleRoute)
# the audit's check descriptions (ecohub.security.checks) as catalogue ids: the page shows them in its language
CHECK_TEXT = (
    N_("device runs a firmware version marked vulnerable"),
    N_("device's product is past its declared security support period"),
    N_("repeated failed connects (wrong secret) for a device id"),
    N_("device connected from unusually many source addresses"),
    N_("device sends above its product's declared message rate"),
    N_("product in the field without a valid certification declaration"),
    N_("device never updated its firmware"),
)


@router.get("/security", response_class=HTMLResponse)
def security(request: Request, services: ServicesDep, status: str | None = None, severity: str | None = None,
             principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Security findings (open and acknowledged by default), most severe first."""
    svc = services.security.service
    rows = (svc.findings(caller=principal, status=status or None, severity=severity or None, limit=500) if status
            else [f for s in ("open", "acknowledged") for f in svc.findings(caller=principal, status=s,
                                                                           severity=severity or None, limit=500)])
    return render(request, "operator/security.html", principal, findings=rows, status=status or "",
                  severity=severity or "")
