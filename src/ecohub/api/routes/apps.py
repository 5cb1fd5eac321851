"""HTTP routes of the developer platform: app registration and usage, the user's granted apps, and OAuth 2.1."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from ecohub.api.deps import OperatorDep, ServicesDep, StaffDep, UserDep
from ecohub.api.routes.oauth import router as oauth_router

router = APIRouter(tags=["apps"])


class AppIn(BaseModel):
    """Register a third-party app (an OAuth client)."""

    name: str = Field(min_length=1, max_length=100, examples=["Energy dashboard"])
    redirect_uris: list[str] = Field(min_length=1, max_length=10, examples=[["https://app.example.com/callback"]])
    scopes: list[str] | None = Field(default=None, examples=[["devices:read", "devices:control"]])
    privacy_policy_url: str | None = Field(default=None, max_length=500, examples=["https://app.example.com/privacy"])
    partner_id: str | None = Field(default=None, description="operator only: the partner the app belongs to")


class SuspendIn(BaseModel):
    """Why an app is suspended (shown to its developer)."""

    reason: str = Field(default="", max_length=200)


@router.post("/apps", status_code=201)
def create_app(body: AppIn, services: ServicesDep, principal: StaffDep) -> dict[str, Any]:
    """Register an app: its client id, and its client secret (shown once: only a hash is kept)."""
    return services.apps.registry.create(name=body.name, redirect_uris=body.redirect_uris, scopes=body.scopes,
                                         privacy_policy_url=body.privacy_policy_url, partner_id=body.partner_id,
                                         caller=principal)


@router.get("/apps")
def list_apps(services: ServicesDep, principal: StaffDep) -> list[Any]:
    """Registered apps (a partner: its own)."""
    return services.apps.registry.list(caller=principal)


@router.get("/apps/{app_id}")
def get_app(app_id: str, services: ServicesDep, principal: StaffDep) -> dict[str, Any]:
    """One app (never its secret)."""
    return services.apps.registry.get(app_id, caller=principal).view()


@router.get("/apps/{app_id}/usage")
def app_usage(app_id: str, services: ServicesDep, principal: StaffDep) -> dict[str, Any]:
    """The app's quotas and what it used of them: requests this minute, pushes today."""
    return services.apps.quotas.usage(app_id, caller=principal)


@router.post("/apps/{app_id}/suspend")
def suspend_app(app_id: str, body: SuspendIn, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Suspend an app (operator): its tokens stop working at once and no user can authorize it."""
    return services.apps.registry.suspend(app_id, reason=body.reason, caller=principal)


@router.post("/apps/{app_id}/resume")
def resume_app(app_id: str, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Lift a suspension (operator)."""
    return services.apps.registry.resume(app_id, caller=principal)


class LimitsIn(BaseModel):
    """An app's quotas."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=10**9)
    pushes_per_day: int | None = Field(default=None, ge=1, le=10**9)


@router.put("/apps/{app_id}/limits")
def set_limits(app_id: str, body: LimitsIn, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Change an app's quotas (operator); the app sees them in its usage and in the RateLimit headers."""
    return services.apps.registry.set_limits(app_id, requests_per_minute=body.requests_per_minute,
                                             pushes_per_day=body.pushes_per_day, caller=principal)


@router.get("/me/apps", tags=["my apps"])
def my_apps(services: ServicesDep, principal: UserDep) -> list[Any]:
    """The apps the caller granted access: scopes and devices."""
    return services.apps.grants.of_user(principal)


@router.delete("/me/apps/{grant_id}", status_code=204, tags=["my apps"])
def revoke_grant(grant_id: str, services: ServicesDep, principal: UserDep) -> Response:
    """Withdraw an app's access: every token it holds for the caller stops working at once."""
    services.apps.grants.revoke(principal, grant_id)
    return Response(status_code=204)


router.include_router(oauth_router)
