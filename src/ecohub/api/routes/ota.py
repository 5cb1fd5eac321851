"""REST: firmware campaigns (create, progress, pause, resume, cancel)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from ecohub.api.deps import RowId, ServicesDep, require
from ecohub.auth import Principal, Role
from ecohub.ota.domain import DEFAULT_DEVICE_TIMEOUT_S, DEFAULT_STAGES, DEFAULT_THRESHOLD

router = APIRouter(tags=["ota"])
OperatorOrPartner = Depends(require(Role.OPERATOR, Role.PARTNER))


class CampaignIn(BaseModel):
    """A campaign of an approved image to the devices of its model."""

    model: str = Field(examples=["acme.plug.v1"], max_length=64)
    version: str = Field(examples=["1.2.0"], max_length=32)
    market: str | None = Field(None, examples=["DE"], max_length=2, description="only devices of this market's cell")
    cell: str | None = Field(None, max_length=16)
    stages: list[int] = Field(default_factory=lambda: list(DEFAULT_STAGES),
                              description="cumulative percentages of the target devices, increasing, ending at 100")
    threshold: float = Field(DEFAULT_THRESHOLD, description="failure rate (percent) that halts the campaign")
    rollback: bool = Field(False, description="back to an older version (the only case a non-newer one is allowed)")
    device_timeout_s: int = Field(DEFAULT_DEVICE_TIMEOUT_S, description="an offered device without a result fails")
    max_in_flight: int | None = Field(None, strict=True, examples=[500],
                                      description="at most this many devices updating at once (0: no cap; unset: "
                                                  "the hub's default, `ota.max_in_flight`)")
    max_per_minute: int = Field(0, strict=True, examples=[300],
                                description="at most this many offers a minute (0: no cap)")


@router.post("/ota/campaigns", status_code=201)
def create(body: CampaignIn, services: ServicesDep, principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Start a staged rollout; the hub offers stage by stage, halting over the failure threshold."""
    return services.campaigns.create(**body.model_dump(), caller=principal, actor=principal.actor)


@router.get("/ota/campaigns")
def list_campaigns(services: ServicesDep, model: str | None = Query(None, max_length=64),
                   principal: Principal = OperatorOrPartner) -> list[dict[str, Any]]:
    """Campaigns, newest first, with their counts."""
    return services.campaigns.list(model=model, caller=principal)


@router.get("/ota/campaigns/{campaign_id}")
def get(campaign_id: RowId, services: ServicesDep, devices: int = Query(100, ge=0, le=10_000),
        principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Progress per stage and per device (offered, downloading, verifying, installing, done, failed with code)."""
    return services.campaigns.get(campaign_id, caller=principal, devices=devices)


@router.post("/ota/campaigns/{campaign_id}/pause")
def pause(campaign_id: RowId, services: ServicesDep, principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Stop offering; devices already updating finish."""
    return services.campaigns.pause(campaign_id, caller=principal)


@router.post("/ota/campaigns/{campaign_id}/resume")
def resume(campaign_id: RowId, services: ServicesDep, principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """Go on after a pause or an automatic halt."""
    return services.campaigns.resume(campaign_id, caller=principal)


@router.post("/ota/campaigns/{campaign_id}/cancel")
def cancel(campaign_id: RowId, services: ServicesDep, principal: Principal = OperatorOrPartner) -> dict[str, Any]:
    """End the campaign; devices not yet offered never are."""
    return services.campaigns.cancel(campaign_id, caller=principal)
