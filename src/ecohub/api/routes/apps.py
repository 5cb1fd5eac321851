"""HTTP routes of the developer platform: app registration and usage, the user's granted apps, and OAuth 2.1."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ecohub.api.deps import OperatorDep, ServicesDep, StaffDep, UserDep, get_principal, require
from ecohub.api.routes.oauth import router as oauth_router
from ecohub.apps.domain import MAX_BATCH
from ecohub.auth import Principal, Role, Scope
from ecohub.errors import EcohubError

router = APIRouter(tags=["apps"])
RECHECK_S = 5.0  # a stream re-checks its token this often: revoking a grant ends its streams within seconds


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


class WebhookIn(BaseModel):
    """Where to push the changes of the devices the user granted (Standard Webhooks signatures)."""

    url: str = Field(max_length=500, examples=["https://app.example.com/hooks/ecohub"])
    events: list[str] | None = Field(default=None, examples=[["device.properties", "device.online"]])
    batch_max: int = Field(default=1, ge=1, le=MAX_BATCH, strict=True, examples=[100],
                           description="1 (the default): one message per POST. More: up to that many queued messages "
                                       'in one POST, `{"type": "batch", "events": [...]}`, each event with its `id`')


app_token = require(Role.APP)


@router.post("/apps/{app_id}/webhooks", status_code=201, tags=["push"])
def create_webhook(app_id: str, body: WebhookIn, services: ServicesDep,
                   principal: Principal = Depends(app_token)) -> dict[str, Any]:
    """Subscribe (with an access token of the app: one subscription follows one user's grant) to property changes,
    events and online/offline of the granted devices; the signing secret is shown once."""
    return services.apps.push.subscribe(principal, app_id, url=body.url, events=body.events,
                                        batch_max=body.batch_max)


@router.get("/apps/{app_id}/webhooks", tags=["push"])
def list_webhooks(app_id: str, services: ServicesDep, principal: Principal = Depends(app_token)) -> list[Any]:
    """This grant's webhooks, with their state (active or disabled, consecutive failures)."""
    return services.apps.push.list(principal, app_id)


@router.delete("/apps/{app_id}/webhooks/{webhook_id}", status_code=204, tags=["push"])
def delete_webhook(app_id: str, webhook_id: str, services: ServicesDep,
                   principal: Principal = Depends(app_token)) -> Response:
    """Remove a webhook and what is queued for it."""
    services.apps.push.delete(principal, app_id, webhook_id)
    return Response(status_code=204)


@router.get("/apps/{app_id}/webhooks/{webhook_id}/dead-letters", tags=["push"])
def webhook_dead_letters(app_id: str, webhook_id: str, services: ServicesDep,
                         limit: int = Query(100, ge=1, le=1000),
                         principal: Principal = Depends(app_token)) -> list[Any]:
    """Messages the hub gave up on after its retries (or refused over the daily push quota), newest first."""
    return services.apps.push.dead_letters(principal, app_id, webhook_id, limit=limit)


@router.post("/apps/{app_id}/webhooks/{webhook_id}/enable", tags=["push"])
def enable_webhook(app_id: str, webhook_id: str, services: ServicesDep,
                   principal: Principal = Depends(app_token)) -> dict[str, Any]:
    """Re-enable a webhook that was disabled after failing for too long."""
    return services.apps.push.enable(principal, app_id, webhook_id)


@router.get("/stream", tags=["push"], response_class=StreamingResponse)
async def stream(request: Request, services: ServicesDep,
                 principal: Principal = Depends(require(Role.USER, Role.APP))) -> StreamingResponse:
    """Server-sent events of the caller's devices (an app: the granted ones, with devices:read): `props`, `online`
    and `event` messages as they happen — no polling — and the user's `notification`s (an app: those naming no device
    or a granted one). The stream ends after a few minutes; clients reconnect."""
    accesses = await run_in_threadpool(services.home.homes.accessible_devices, principal, None, Scope.DEVICES_READ)
    hub = request.app.state.console_live
    token = request.headers.get("authorization", "")[7:]
    last_check = time.monotonic()

    async def gone() -> bool:
        """The client went away, or its token was revoked, expired or suspended meanwhile (checked every few s)."""
        nonlocal last_check
        if await request.is_disconnected():
            return True
        if time.monotonic() - last_check >= RECHECK_S:
            last_check = time.monotonic()
            try:
                creds = HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
                await run_in_threadpool(get_principal, services, Response(), creds)
            except EcohubError:
                return True
        return False

    return StreamingResponse(hub.stream(frozenset(a.did for a in accesses), is_disconnected=gone,
                                        user=principal.subject),
                             media_type="text/event-stream", headers={"Cache-Control": "no-store"})


router.include_router(oauth_router)
