"""HTTP routes of user devices (what a phone app calls) and the device-side request for a fresh bind code."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field

from ecohub.api.deps import ServicesDep, require
from ecohub.auth import Principal, Role, Scope
from ecohub.errors import ErrorCode, Forbidden, Unauthorized
from ecohub.home.domain import HomeRole

router = APIRouter(tags=["my devices"])
user = require(Role.USER)
user_or_app = require(Role.USER, Role.APP)  # app tokens: the service checks their scope and grant
device_basic = HTTPBasic(auto_error=False, description="the device's own did and secret")


def device_role(least: HomeRole, scope: Scope) -> Callable[..., Principal]:
    """A dependency admitting users with at least `least` in the home of the path's device (before the body), and
    app tokens granted the device with `scope`."""

    def check(did: str, services: ServicesDep, principal: Principal = Depends(user_or_app)) -> Principal:
        services.home.homes.device_access(principal, did, least, scope)
        return principal

    check.__name__ = f"device_{least.label}"
    return check


controller = device_role(HomeRole.MEMBER, Scope.DEVICES_CONTROL)


class SetIn(BaseModel):
    """Values to set, keyed by property name (`on`, `switch.on`) or `siid.piid`."""

    values: dict[str, Any] = Field(examples=[{"switch.on": True}])
    timeout_s: float | None = Field(default=None, gt=0, le=60)


def device_itself(did: str, request: Request,
                  creds: HTTPBasicCredentials | None = Depends(device_basic)) -> HTTPBasicCredentials:
    """Only the device itself (HTTP Basic did:secret) may call; bearer tokens of people are refused."""
    if creds is None:
        if request.headers.get("authorization", "").lower().startswith("bearer "):
            raise Forbidden("only the device itself may ask for a bind code (HTTP Basic did:secret)",
                            code=ErrorCode.WRONG_ROLE)
        raise Unauthorized("device credentials are required (HTTP Basic did:secret)",
                           code=ErrorCode.MISSING_CREDENTIALS)
    if creds.username != did:
        raise Forbidden("a device may ask only for its own bind code", code=ErrorCode.NOT_YOUR_DEVICE)
    return creds


@router.post("/devices/{did}/bind-codes", status_code=201, tags=["devices"])
def fresh_bind_code(did: str, services: ServicesDep,
                    creds: HTTPBasicCredentials = Depends(device_itself)) -> dict[str, Any]:
    """A fresh one-time bind code for the device to show (valid once, for a few minutes)."""
    return services.home.bindings.issue_code(did, creds.password)


@router.get("/me/devices")
def my_devices(services: ServicesDep, response: Response, request: Request,
               include: str | None = Query(None, pattern="^twin$", description="`twin`: each device's twin too"),
               cursor: str | None = Query(None, max_length=80), limit: int = Query(100, ge=1, le=1000),
               principal: Principal = Depends(user_or_app)) -> list[Any]:
    """The caller's devices (an app: those granted to it), whatever partner made them, with friendly names next to
    raw keys, in pages of `limit`: a next page is announced by `Link: <…>; rel="next"` and `Next-Cursor`.
    `include=twin` adds each device's twin (batch state: one call, no per-device polling)."""
    items, nxt = services.home.devices.page(principal, cursor=cursor, limit=limit, include_twin=include == "twin")
    if nxt:
        url = request.url.include_query_params(cursor=nxt)
        response.headers["Link"] = f'<{url}>; rel="next"'
        response.headers["Next-Cursor"] = nxt
    return items


class DeviceSet(BaseModel):
    """Values for one device of a batch."""

    did: str = Field(max_length=40)
    values: dict[str, Any] = Field(examples=[{"switch.on": True}])


class SetManyIn(BaseModel):
    """Set properties on several devices in one call."""

    devices: list[DeviceSet] = Field(min_length=1, max_length=100)
    timeout_s: float | None = Field(default=None, gt=0, le=60)


@router.post("/me/devices:set")
async def set_many(body: SetManyIn, services: ServicesDep,
                   principal: Principal = Depends(user_or_app)) -> dict[str, Any]:
    """Set properties on several devices at once (owners and members; apps with devices:control on granted
    devices); each device answers for itself in `results`."""
    results = await services.home.devices.set_many(principal, [(d.did, d.values) for d in body.devices],
                                                   timeout_s=body.timeout_s)
    return {"results": results}


@router.get("/me/devices/{did}")
def my_device(did: str, services: ServicesDep,
              principal: Principal = Depends(device_role(HomeRole.GUEST, Scope.DEVICES_READ))) -> dict[str, Any]:
    """One device: each property's description, unit, allowed values, reported and desired value, pending flag."""
    return services.home.devices.get(principal, did)


@router.post("/me/devices/{did}/properties")
async def set_properties(did: str, body: SetIn, services: ServicesDep, response: Response,
                         principal: Principal = Depends(controller)) -> dict[str, Any]:
    """Set properties by name or `siid.piid` (owners and members; guests only view); waits for the device.

    A device that is offline: 202 `{"status": "pending", "desired"}`, delivered when it reconnects."""
    result = await services.home.devices.set_properties(principal, did, body.values, timeout_s=body.timeout_s)
    if result.get("status") == "pending":
        response.status_code = 202
    return result


class DeviceShareIn(BaseModel):
    """Share this one device with a person by e-mail: member (control) or guest (view), optionally until a time."""

    email: str = Field(max_length=254, examples=["friend@example.com"])
    role: str = Field(examples=["guest", "member"])
    expires_at: datetime | None = Field(default=None, examples=["2027-01-01T00:00:00Z"])


def device_owner(did: str, services: ServicesDep, principal: Principal = Depends(user)) -> Principal:
    """A dependency admitting only the owner of the device's home (checked before the body is read)."""
    services.home.homes.device_access(principal, did, HomeRole.OWNER)
    return principal


@router.post("/me/devices/{did}/shares", status_code=201)
def share_device(did: str, body: DeviceShareIn, services: ServicesDep,
                 principal: Principal = Depends(device_owner)) -> dict[str, Any]:
    """Share one device (owner of its home). The answer is the same whether or not the address has an account (no
    account enumeration): the share is pending until an account of your region with that e-mail uses it."""
    return services.home.homes.share_device(principal, did, email=body.email, role=body.role,
                                            expires_at=body.expires_at)


@router.get("/me/devices/{did}/shares")
def device_shares(did: str, services: ServicesDep, principal: Principal = Depends(user)) -> list[Any]:
    """The device's shares with e-mails (owner); the invitee sees their own share."""
    return services.home.homes.device_shares(principal, did)


@router.delete("/me/devices/{did}/shares/{share_id}", status_code=204)
def end_device_share(did: str, share_id: str, services: ServicesDep, principal: Principal = Depends(user)) -> None:
    """End a share (owner), or leave one shared with you (invitee); effective on the next request."""
    services.home.homes.end_share(principal, did, share_id)


@router.get("/me/favourites")
def my_favourites(services: ServicesDep, principal: Principal = Depends(user)) -> list[str]:
    """The caller's favourite devices (dids, in the order marked), the same on every browser and app; a device the
    caller can no longer see drops out."""
    return services.home.favourites.list(principal)


@router.put("/me/favourites/{did}", status_code=204)
def add_favourite(did: str, services: ServicesDep, principal: Principal = Depends(user)) -> None:
    """Mark a device of the caller's homes (or shared with them) as a favourite; again is harmless."""
    services.home.favourites.set(principal, did, True)


@router.delete("/me/favourites/{did}", status_code=204)
def remove_favourite(did: str, services: ServicesDep, principal: Principal = Depends(user)) -> None:
    """Unmark a favourite (one that was none is fine too)."""
    services.home.favourites.set(principal, did, False)
