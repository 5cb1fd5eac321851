"""Operator console: firmware campaigns — the list with their progress, one campaign per stage and per device."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from ecohub.api.console.common import ConsoleRoute, operator_only, render
from ecohub.api.deps import RowId, ServicesDep
from ecohub.auth import Principal

router = APIRouter(route_class=ConsoleRoute)
ACTIONS = ("pause", "resume", "cancel")


@router.get("/ota", response_class=HTMLResponse)
def campaigns(request: Request, services: ServicesDep, principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """Every campaign, newest first: target, stage, counts, failure rate."""
    rows = services.campaigns.list(caller=principal)
    for c in rows:
        c["done_pct"] = round(100 * c["counts"].get("done", 0) / c["targets"]) if c["targets"] else 0
    return render(request, "operator/campaigns.html", principal, campaigns=rows,
                  images=services.firmware.list(caller=principal)[:20])


@router.get("/ota/{campaign_id}", response_class=HTMLResponse)
def campaign(campaign_id: RowId, request: Request, services: ServicesDep,
             principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """One campaign: a bar per stage, the counts, the devices (not done first)."""
    c = services.campaigns.get(campaign_id, caller=principal, devices=500)
    c["devices"].sort(key=lambda d: (d["state"] == "done", d["did"]))
    return render(request, "operator/campaign.html", principal, c=c, actions=ACTIONS)


@router.post("/ota/{campaign_id}/{action}")
def act(campaign_id: RowId, action: str, services: ServicesDep,
        principal: Principal = Depends(operator_only)) -> RedirectResponse:
    """Pause, resume or cancel from the page (then back to it)."""
    if action in ACTIONS:
        getattr(services.campaigns, action)(campaign_id, caller=principal)
    return RedirectResponse(f"/console/ota/{campaign_id}", status_code=303)
