"""The user's view: homes and rooms, device cards with controls drawn from the spec, live values, charts."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from ecohub.api.console.common import ConsoleRoute, render, user_only
from ecohub.api.console.fleet import CHART_POINTS, RANGES, chart_columns
from ecohub.api.console.live import LiveHub
from ecohub.api.deps import ServicesDep
from ecohub.auth import Principal
from ecohub.errors import ErrorCode, InvalidInput
from ecohub.home.domain import HomeRole
from ecohub.protocol import Method

router = APIRouter(route_class=ConsoleRoute)
CARD_ROWS = 5
INT_FORMATS = {"uint8", "uint16", "uint32", "int8", "int16", "int32", "int64"}


def control_of(prop: dict[str, Any]) -> str:
    """Which control a property gets: switch, slider, select, text entry, or a read-only value."""
    if "write" not in prop["access"]:
        return "value"
    if prop["format"] == "bool":
        return "switch"
    if prop.get("values"):
        return "select"
    if prop.get("range"):
        return "slider"
    return "text"


def card_view(device: dict[str, Any], *, rows: int | None = CARD_ROWS) -> dict[str, Any]:
    """A device as a card: its properties with their control kind and current value (a pending wish wins)."""
    props = []
    for p in device["properties"]:
        current = (p["desired"] if p["pending"] else p["reported"]) or {}
        props.append({**p, "control": control_of(p), "value": current.get("value"), "ts": current.get("ts"),
                      "numeric": p["format"] != "string"})
    ordered = sorted(props, key=lambda p: (p["control"] != "switch", p["control"] == "value", p["format"] == "string",
                                           p["control"] == "text"))
    shown = ordered if rows is None else ordered[:rows]
    return {**device, "props": shown, "hidden": len(props) - len(shown),
            "can_control": device["role"] in ("owner", "member")}


def coerce(prop: dict[str, Any], raw: str) -> Any:
    """A form value in the property's format (bool, integer, float or string); the service validates the rest."""
    fmt = prop["format"]
    try:
        if fmt == "bool":
            return raw.strip().lower() in ("true", "1", "on", "yes")
        if fmt in INT_FORMATS:
            return int(float(raw))
        if fmt == "float":
            return float(raw)
    except ValueError as err:
        raise InvalidInput(f"{raw!r} is not a valid {fmt} for {prop['name']}", code=ErrorCode.INVALID_VALUE) from err
    return raw


@router.get("/homes", response_class=HTMLResponse)
def homes(request: Request, services: ServicesDep, principal: Principal = Depends(user_only)) -> Response:
    """The user's homes; with one home, straight to it."""
    mine = services.home.homes.of_user(principal)
    if len(mine) == 1:
        return RedirectResponse(f"/console/homes/{mine[0]['home_id']}", status_code=303)
    return render(request, "user/homes.html", principal, homes=mine)


@router.get("/homes/{home_id}", response_class=HTMLResponse)
def home(home_id: str, request: Request, services: ServicesDep, room: str | None = None,
         principal: Principal = Depends(user_only)) -> HTMLResponse:
    """A home: rooms, and a card per device with its controls, updated live."""
    info = services.home.homes.get(principal, home_id)
    devices = [card_view(d) for d in services.home.devices.of_user(principal, home_id)]
    rooms = [{**r, "devices": [d for d in devices if d["room_id"] == r["room_id"]]} for r in info["rooms"]]
    loose = [d for d in devices if d["room_id"] is None]
    if room:
        rooms = [r for r in rooms if r["room_id"] == room]
        loose = []
    online = sum(1 for d in devices if d["online"])
    return render(request, "user/home.html", principal, home=info, rooms=rooms, loose=loose, room=room or "",
                  all_rooms=info["rooms"], devices_total=len(devices), online=online,
                  homes=services.home.homes.of_user(principal))


@router.get("/devices/{did}", response_class=HTMLResponse)
def device(did: str, request: Request, services: ServicesDep,
           principal: Principal = Depends(user_only)) -> HTMLResponse:
    """One device: every property with its control, a telemetry chart per numeric property, recent events."""
    d = services.home.devices.get(principal, did)
    access = services.home.homes.device_access(principal, did, HomeRole.GUEST)
    events = services.telemetry.events(access.cell, did, since=access.since_ms, limit=20)
    return render(request, "user/device.html", principal, device=card_view(d, rows=None), raw=d, events=events,
                  ranges=list(RANGES))


@router.get("/devices/{did}/card", response_class=HTMLResponse)
def card(did: str, request: Request, services: ServicesDep, full: bool = False,
         principal: Principal = Depends(user_only)) -> HTMLResponse:
    """A device card fragment."""
    d = card_view(services.home.devices.get(principal, did), rows=None if full else CARD_ROWS)
    return render(request, "user/_card.html", principal, device=d, full=full)


@router.post("/devices/{did}/set", response_class=HTMLResponse)
async def set_property(did: str, request: Request, services: ServicesDep, key: str = Form(...),
                       value: str = Form(""), full: bool = Form(False),
                       principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Set one property (the same service calls as PUT /me/devices/{did}/properties); re-render the card."""
    current = services.home.devices.get(principal, did)
    prop = next((p for p in current["properties"] if p["key"] == key), None)
    if prop is None:
        raise InvalidInput(f"no property {key} on this device", code=ErrorCode.UNKNOWN_PROPERTY)
    result = await services.home.devices.set_properties(principal, did, {key: coerce(prop, value)})
    d = card_view(services.home.devices.get(principal, did), rows=None if full else CARD_ROWS)
    return render(request, "user/_card.html", principal, device=d, full=full, result=result)


@router.post("/devices/{did}/action", response_class=HTMLResponse)
async def run_action(did: str, request: Request, services: ServicesDep, key: str = Form(...),
                     full: bool = Form(False), principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Run an action without input arguments; re-render the card with the device's answer."""
    services.home.homes.device_access(principal, did, HomeRole.MEMBER)
    siid, _, aiid = key.partition(".")
    if not (siid.isdigit() and aiid.isdigit()):
        raise InvalidInput(f"action key {key!r} must be 'siid.aiid'", code=ErrorCode.INVALID_COMMAND)
    result = await services.command_link.require().send(did, Method.ACTION, {"siid": int(siid), "aiid": int(aiid),
                                                                             "in": []}, actor=principal.actor)
    d = card_view(services.home.devices.get(principal, did), rows=None if full else CARD_ROWS)
    return render(request, "user/_card.html", principal, device=d, full=full, result=result)


@router.get("/devices/{did}/telemetry.json")
def telemetry(did: str, key: str, services: ServicesDep, range: str = Query("1h"),
              principal: Principal = Depends(user_only)) -> JSONResponse:
    """One property over a time range (never before the user bound the device), downsampled, as chart columns."""
    access = services.home.homes.device_access(principal, did, HomeRole.GUEST)
    since = max(int(time.time() * 1000) - RANGES.get(range, 3600) * 1000, access.since_ms)
    model = services.devices.get(did).model
    return JSONResponse(chart_columns(services.telemetry.downsample(access.cell, did, key, model=model, since=since,
                                                                    points=CHART_POINTS, floor=access.since_ms)))


@router.get("/live")
async def live(request: Request, services: ServicesDep, principal: Principal = Depends(user_only)) -> StreamingResponse:
    """Server-sent updates of the caller's devices (properties, online state, events)."""
    dids = frozenset(a.did for a in services.home.homes.accessible_devices(principal))
    hub: LiveHub = request.app.state.console_live
    return StreamingResponse(hub.stream(dids, is_disconnected=request.is_disconnected),
                             media_type="text/event-stream", headers={"Cache-Control": "no-store"})
