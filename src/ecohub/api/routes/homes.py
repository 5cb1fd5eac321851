"""HTTP routes of homes: homes, rooms, claiming and unbinding devices, sharing (users only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from ecohub.api.deps import ServicesDep, require
from ecohub.auth import Principal, Role, Scope
from ecohub.home.domain import HomeRole

router = APIRouter(tags=["homes"])
user = require(Role.USER)
user_or_app = require(Role.USER, Role.APP)  # app tokens: the service checks their scope and grant


def home_role(least: HomeRole, scope: Scope | None = None) -> Callable[..., Principal]:
    """A dependency admitting users with at least `least` in the path's home (checked before the body is read);
    with `scope`, app tokens granted it too."""

    def check(home_id: str, services: ServicesDep,
              principal: Principal = Depends(user_or_app if scope else user)) -> Principal:
        services.home.homes.require(principal, home_id, least, scope)
        return principal

    check.__name__ = f"home_{least.label}"
    return check


guest, member, owner = home_role(HomeRole.GUEST), home_role(HomeRole.MEMBER), home_role(HomeRole.OWNER)
reader = home_role(HomeRole.GUEST, Scope.HOMES_READ)


class NameIn(BaseModel):
    """A name for a home or a room."""

    name: str = Field(min_length=1, max_length=100, examples=["Flat in Lyon"])


class ClaimIn(BaseModel):
    """Claim a device with the code printed on it or shown by it."""

    did: str = Field(max_length=40)
    bind_code: str = Field(min_length=4, max_length=32)
    room_id: str | None = None
    name: str = Field(default="", max_length=100)


class DevicePatch(BaseModel):
    """Rename a device or move it between rooms (room_id null takes it out of its room)."""

    name: str | None = Field(default=None, max_length=100)
    room_id: str | None = None


class ShareIn(BaseModel):
    """Invite an existing user: member (control) or guest (view), optionally for a limited time."""

    email: str = Field(max_length=254)
    role: str = Field(examples=["member", "guest"])
    expires_in_s: int | None = Field(default=None, le=10 * 365 * 24 * 3600, examples=[86400])


@router.post("/homes", status_code=201)
def create_home(body: NameIn, services: ServicesDep, principal: Principal = Depends(user)) -> dict[str, str]:
    """Create a home owned by the caller."""
    return services.home.homes.create(principal, body.name)


@router.get("/homes")
def list_homes(services: ServicesDep, principal: Principal = Depends(user_or_app)) -> list[Any]:
    """Homes the caller owns or shares, with their role."""
    return services.home.homes.of_user(principal)


@router.get("/homes/{home_id}")
def get_home(home_id: str, services: ServicesDep, principal: Principal = Depends(reader)) -> dict[str, Any]:
    """A home with rooms and devices."""
    return services.home.homes.get(principal, home_id)


@router.patch("/homes/{home_id}")
def rename_home(home_id: str, body: NameIn, services: ServicesDep,
                principal: Principal = Depends(owner)) -> dict[str, Any]:
    """Rename a home (owner); → the home as GET returns it."""
    services.home.homes.rename(principal, home_id, body.name)
    return services.home.homes.get(principal, home_id)


@router.delete("/homes/{home_id}", status_code=204)
def delete_home(home_id: str, services: ServicesDep, principal: Principal = Depends(owner)) -> None:
    """Delete an empty home (owner)."""
    services.home.homes.delete(principal, home_id)


@router.post("/homes/{home_id}/rooms", status_code=201)
def add_room(home_id: str, body: NameIn, services: ServicesDep, principal: Principal = Depends(member)) -> dict[str,
             str]:
    """Add a room (owner or member)."""
    return services.home.homes.add_room(principal, home_id, body.name)


@router.patch("/homes/{home_id}/rooms/{room_id}")
def rename_room(home_id: str, room_id: str, body: NameIn, services: ServicesDep,
                principal: Principal = Depends(member)) -> dict[str, Any]:
    """Rename a room (owner or member); → the room {room_id, name}."""
    services.home.homes.rename_room(principal, home_id, room_id, body.name)
    return _entry(services.home.homes.get(principal, home_id)["rooms"], "room_id", room_id)


@router.delete("/homes/{home_id}/rooms/{room_id}", status_code=204)
def delete_room(home_id: str, room_id: str, services: ServicesDep, principal: Principal = Depends(member)) -> None:
    """Delete a room; its devices stay in the home (owner or member)."""
    services.home.homes.delete_room(principal, home_id, room_id)


@router.post("/homes/{home_id}/devices", status_code=201)
def claim_device(home_id: str, body: ClaimIn, services: ServicesDep,
                 principal: Principal = Depends(owner)) -> dict[str, Any]:
    """Claim a device into the home with its one-time bind code (owner)."""
    return services.home.bindings.claim(principal, home_id, did=body.did, code=body.bind_code,
                                        room_id=body.room_id, name=body.name)


@router.get("/homes/{home_id}/devices")
def home_devices(home_id: str, services: ServicesDep, principal: Principal = Depends(reader)) -> list[Any]:
    """The home's devices with friendly property names, units, allowed values, reported and pending values."""
    return services.home.devices.of_user(principal, home_id)


@router.patch("/homes/{home_id}/devices/{did}")
def update_device(home_id: str, did: str, body: DevicePatch, services: ServicesDep,
                  principal: Principal = Depends(member)) -> dict[str, Any]:
    """Rename a device or move it to a room (owner or member); → the home's entry {did, name, room_id}."""
    services.home.bindings.update(principal, home_id, did, name=body.name, room_id=body.room_id,
                                  clear_room="room_id" in body.model_fields_set and body.room_id is None)
    return _entry(services.home.homes.get(principal, home_id)["devices"], "did", did)


def _entry(rows: list[dict[str, Any]], key: str, value: str) -> dict[str, Any]:
    """The row of a home's rooms or devices just changed (it exists: the change succeeded)."""
    return next(r for r in rows if r[key] == value)


@router.delete("/homes/{home_id}/devices/{did}", status_code=200)
async def unbind_device(home_id: str, did: str, services: ServicesDep,
                        principal: Principal = Depends(owner)) -> dict[str, Any]:
    """Unbind a device (owner): its credentials are reset; the new secret and bind code are shown once."""
    # async on purpose: the reset publishes DeviceRevoked, whose broker handler is a task on the running loop
    return services.home.bindings.unbind(principal, home_id, did)


@router.post("/homes/{home_id}/members", status_code=201)
def share_home(home_id: str, body: ShareIn, services: ServicesDep,
               principal: Principal = Depends(owner)) -> dict[str, Any]:
    """Invite a user of the same cell as member or guest (owner)."""
    return services.home.homes.share(principal, home_id, email=body.email, role=body.role,
                                     expires_in_s=body.expires_in_s)


@router.get("/homes/{home_id}/members")
def list_members(home_id: str, services: ServicesDep, principal: Principal = Depends(guest)) -> list[Any]:
    """Who shares the home, with roles."""
    return services.home.homes.members(principal, home_id)


@router.delete("/homes/{home_id}/members/{user_id}", status_code=204)
def revoke_member(home_id: str, user_id: str, services: ServicesDep, principal: Principal = Depends(guest)) -> None:
    """End a membership (the owner removes anyone; others may leave); effective on the next request."""
    services.home.homes.revoke(principal, home_id, user_id)
