"""The user's view: homes and rooms, device cards with controls drawn from the spec, live values, charts."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response, StreamingResponse

from ecohub.api import i18n
from ecohub.api.console.common import ConsoleRoute, render, user_only
from ecohub.api.console.fleet import CHART_POINTS, RANGES, chart_columns
from ecohub.api.console.live import LiveHub
from ecohub.api.console.words import action_labels, labels_of, on_off, value_text, word
from ecohub.api.deps import ServicesDep
from ecohub.auth import Principal
from ecohub.bootstrap import Services
from ecohub.errors import EcohubError, ErrorCode, InvalidInput
from ecohub.home.domain import HomeRole
from ecohub.protocol import Method
from ecohub.spec.domain import Spec, urn_name
from ecohub.spec.labels import type_label, unit_symbol, value_words
from ecohub.store import utcnow

router = APIRouter(route_class=ConsoleRoute)
CARD_ROWS = 5
FAV_COOKIE = "ecohub_favs"
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


def card_view(device: dict[str, Any], *, rows: int | None = CARD_ROWS, labels: dict[str, dict[str, Any]] | None = None,
              actions: dict[str, str] | None = None, favourite: bool | None = None) -> dict[str, Any]:
    """A device as a card: properties grouped by service, with human labels, unit symbols and their control."""
    labels = labels or {}
    props = []
    for p in device["properties"]:
        current = (p["desired"] if p["pending"] else p["reported"]) or {}
        info = labels.get(p["key"], {})
        entry = {**p, "control": control_of(p), "value": current.get("value"), "ts": current.get("ts"),
                 "numeric": p["format"] != "string", "label": info.get("label") or p["description"] or p["name"],
                 "service_label": info.get("service") or p.get("service") or "", "siid": info.get("siid", 0),
                 "unit": info.get("unit", p.get("unit") or ""), "value_words": info.get("values") or {},
                 "facts": info.get("facts", False)}
        entry["text"] = value_text(entry, entry["value"])
        if p["format"] == "bool":
            entry["live_words"] = {"true": on_off(True, writable="write" in p["access"]),
                                   "false": on_off(False, writable="write" in p["access"])}
        else:
            entry["live_words"] = {str(k).lower() if isinstance(k, bool) else str(k): v
                                   for k, v in entry["value_words"].items()}
        props.append(entry)
    # a card shows what one controls first; the maker's facts (model, serial, firmware) only on the device page
    ordered = sorted(props, key=lambda p: (p["facts"], p["control"] != "switch", p["control"] == "value",
                                           p["format"] == "string", p["control"] == "text"))
    shown = ordered if rows is None else ordered[:rows]
    keep = {p["key"] for p in shown}
    sections: list[dict[str, Any]] = []
    for p in sorted((p for p in props if p["key"] in keep), key=lambda p: p["siid"]):
        if not sections or sections[-1]["siid"] != p["siid"]:
            sections.append({"siid": p["siid"], "label": p["service_label"], "props": []})
        sections[-1]["props"].append(p)
    acts = [{**a, "label": (actions or {}).get(a["key"]) or a["description"] or a["name"]} for a in device["actions"]]
    view = {**device, "props": shown, "sections": sections, "hidden": len(props) - len(shown), "actions": acts,
            "can_control": device["role"] in ("owner", "member")}
    if favourite is not None:
        view["favourite"] = favourite
    return view


def event_view(spec: Spec, event: dict[str, Any]) -> dict[str, Any]:
    """An event as words: its label and each argument as `label: value unit` (no raw JSON)."""
    spec_event = spec.event(int(event["siid"]), int(event["eiid"]))
    label = i18n.gettext(type_label(spec_event.type, spec_event.description)) if spec_event else \
        f"{event['siid']}.{event['eiid']}"
    raw = event.get("arguments")
    items = raw.items() if isinstance(raw, dict) else (
        ((a.get("piid"), a.get("value")) for a in raw if isinstance(a, dict)) if isinstance(raw, list) else ())
    details = []
    for piid, value in items:
        prop = spec.prop(int(event["siid"]), int(str(piid))) if str(piid).isdigit() else None
        if prop is None:
            details.append(f"{piid}: {value}")
            continue
        entry = {"format": prop.format, "access": [a.value for a in prop.access], "value_words": value_words(prop)}
        unit = unit_symbol(prop.unit)
        details.append(f"{i18n.gettext(type_label(prop.type, prop.description))}: {value_text(entry, value)}"
                       + (f" {unit}" if unit else ""))
    return {**event, "label": label, "details": details}


class Cards:
    """Builds cards for one request: labels are computed once per model."""

    def __init__(self, services: Services, favourites: frozenset[str] = frozenset()) -> None:
        self.services = services
        self.favourites = favourites
        self._labels: dict[str, tuple[dict[str, dict[str, Any]], dict[str, str]]] = {}

    def __call__(self, device: dict[str, Any], *, rows: int | None = CARD_ROWS) -> dict[str, Any]:
        model = device["model"]
        if model not in self._labels:
            self._labels[model] = (labels_of(self.services, model), action_labels(self.services, model))
        labels, actions = self._labels[model]
        return card_view(device, rows=rows, labels=labels, actions=actions, favourite=device["did"] in self.favourites)


def favourites_of(request: Request, services: Services, principal: Principal) -> frozenset[str]:
    """The caller's favourite devices, stored with their account (the same on every browser and app); favourites
    an earlier console kept in this browser's cookie are taken over into the account first."""
    raw = request.cookies.get(FAV_COOKIE, "")
    if raw:
        services.home.favourites.adopt(principal, [x for x in raw.split(".")
                                                   if x and x.replace("-", "").replace("_", "").isalnum()][:100])
    return frozenset(services.home.favourites.list(principal))


def forget_cookie(request: Request, response: Response) -> Response:
    """Drop the per-browser favourites cookie once the account holds them."""
    if FAV_COOKIE in request.cookies:
        response.delete_cookie(FAV_COOKIE, path="/console")
    return response


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
    shared = [Cards(services, favourites_of(request, services, principal))(d, rows=CARD_ROWS)
              for d in services.home.devices.of_user(principal) if d["shared"]]
    if len(mine) == 1 and not shared:
        return RedirectResponse(f"/console/homes/{mine[0]['home_id']}", status_code=303)
    return forget_cookie(request, render(request, "user/homes.html", principal, homes=mine, shared=shared))


GROUPS = {"light": ("light",), "switch": ("switch", "outlet")}  # a room's device groups: MIoT service types


def group_keys(services: Services, model: str, kind: str) -> list[str]:
    """The writable on/off properties of a model's services of a group kind (a light's `light.on`)."""
    spec = services.products.compiled(model).spec
    return [p.key for s in spec.services if urn_name(s.type) in GROUPS.get(kind, ()) for p in s.properties
            if urn_name(p.type) == "on" and p.writable and p.format == "bool"]


def room_groups(services: Services, devices: list[dict[str, Any]]) -> list[str]:
    """Which groups a room's controllable devices form (at least one member each)."""
    return [kind for kind in GROUPS if any(d["can_control"] and group_keys(services, d["model"], kind)
                                           for d in devices)]


@router.post("/homes/{home_id}/group", response_class=HTMLResponse)
async def switch_group(home_id: str, request: Request, services: ServicesDep, room_id: str = Form(...),
                       kind: str = Form(...), on: bool = Form(...),
                       principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Switch every light (or switch) of a room on or off at once; the page says how many devices confirmed."""
    if kind not in GROUPS:
        raise InvalidInput(f"no device group {kind!r}", code=ErrorCode.INVALID_INPUT)
    members = [d for d in services.home.devices.of_user(principal, home_id)
               if d["room_id"] == room_id and d["role"] in ("owner", "member")]
    calls = [(d, keys) for d in members if (keys := group_keys(services, d["model"], kind))]
    results = await asyncio.gather(*(services.home.devices.set_properties(principal, d["did"], dict.fromkeys(keys, on))
                                     for d, keys in calls), return_exceptions=True)
    confirmed = sum(1 for r in results if isinstance(r, dict) and r.get("status") == "replied")
    notice = i18n.gettext("%(ok)s of %(n)s devices confirmed.", ok=confirmed, n=len(calls))
    return home_page(home_id, request, services, principal, room=None, q="", notice=notice)


@router.get("/homes/{home_id}", response_class=HTMLResponse)
def home(home_id: str, request: Request, services: ServicesDep, room: str | None = None, q: str = "",
         principal: Principal = Depends(user_only)) -> HTMLResponse:
    """A home: favourites first, then a section per room (or one room), cards searchable by name, updated live."""
    return home_page(home_id, request, services, principal, room=room, q=q)


def home_page(home_id: str, request: Request, services: Services, principal: Principal, *, room: str | None,
              q: str, notice: str | None = None) -> HTMLResponse:
    """The home page, with what a group switch just did."""
    info = services.home.homes.get(principal, home_id)
    cards = Cards(services, favourites_of(request, services, principal))
    devices = [cards(d) for d in services.home.devices.of_user(principal, home_id)]
    online = sum(1 for d in devices if d["online"])
    total = len(devices)
    needle = q.strip().lower()
    if needle:
        devices = [d for d in devices if needle in f"{d['name']} {d['product']}".lower()]
    favourites = [d for d in devices if d["favourite"]] if not room else []
    rest = [d for d in devices if d not in favourites]
    rooms = [{**r, "devices": [d for d in rest if d["room_id"] == r["room_id"]]} for r in info["rooms"]]
    for r in rooms:
        r["groups"] = room_groups(services, [d for d in devices if d["room_id"] == r["room_id"]])
    loose = [d for d in rest if d["room_id"] is None]
    if room:
        rooms = [r for r in rooms if r["room_id"] == room]
        loose = []
    page = render(request, "user/home.html", principal, home=info, rooms=rooms, loose=loose, room=room or "",
                  all_rooms=info["rooms"], devices_total=total, online=online, favourites=favourites, q=q,
                  shown=len(devices), homes=services.home.homes.of_user(principal), notice=notice,
                  scenes=services.automations.scenes.of_home(principal, home_id),
                  all_devices=[{"did": d["did"], "name": d["name"], "can_control": d["can_control"]} for d in devices])
    forget_cookie(request, page)
    return page


SCENE_FORMATS = {"bool", *INT_FORMATS}  # what a scene captures: switches and modes, not free text


def captured(device: dict[str, Any]) -> dict[str, Any]:
    """A device's writable switch and mode values as they are now (what "save as a scene" keeps)."""
    out = {}
    for p in device["properties"]:
        current = p["desired"] if p["pending"] else p["reported"]
        if "write" in p["access"] and p["format"] in SCENE_FORMATS and current is not None and \
                (p["format"] == "bool" or p.get("values")):
            out[p["key"]] = current["value"]
    return out


@router.post("/homes/{home_id}/scenes", response_class=HTMLResponse)
def save_scene(home_id: str, request: Request, services: ServicesDep, name: str = Form(...),
               dids: list[str] = Form(default=[]), principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Save the chosen devices' switches and modes, as they are now, as a scene of the home."""
    devices = {d["did"]: d for d in services.home.devices.of_user(principal, home_id)}
    actions = [{"did": did, "values": values} for did in dids if did in devices
               if (values := captured(devices[did]))]
    try:
        services.automations.scenes.create(principal, home_id, name, actions)
    except EcohubError as err:
        return home_page(home_id, request, services, principal, room=None, q="",
                         notice=i18n.translate_known(err.message, i18n.current()))
    return home_page(home_id, request, services, principal, room=None, q="",
                     notice=i18n.gettext("Saved the scene “%(name)s”.", name=name))


@router.post("/scenes/{scene_id}/{change}", response_class=HTMLResponse)
async def change_scene(scene_id: str, change: str, request: Request, services: ServicesDep,
                       principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Run a scene (every device set at once, as its card would) or delete it."""
    scene = services.automations.scenes.get(principal, scene_id)
    if change == "delete":
        services.automations.scenes.delete(principal, scene_id)
        notice = i18n.gettext("Deleted the scene “%(name)s”.", name=scene["name"])
    elif change == "run":
        plan = services.automations.scenes.plan(principal, scene_id)
        results = await asyncio.gather(*(services.home.devices.set_properties(principal, a["did"], a["values"])
                                         for a in plan), return_exceptions=True)
        confirmed = sum(1 for r in results if isinstance(r, dict) and r.get("status") == "replied")
        notice = i18n.gettext("“%(name)s”: %(ok)s of %(n)s devices confirmed.", name=scene["name"], ok=confirmed,
                              n=len(plan))
    else:
        raise InvalidInput(f"no change {change!r} of a scene", code=ErrorCode.INVALID_INPUT)
    return home_page(scene["home_id"], request, services, principal, room=None, q="", notice=notice)


SHARE_DAYS = (None, 1, 7, 30, 365)


def sharing_page(home_id: str, request: Request, services: Services, principal: Principal, *,
                 notice: str | None = None, error: str | None = None) -> HTMLResponse:
    """Who shares a home (roles and until when) and, for its owner, the invitation form."""
    info = services.home.homes.get(principal, home_id)
    members = services.home.homes.members(principal, home_id)
    return render(request, "user/sharing.html", principal, home=info, members=members, days=SHARE_DAYS,
                  notice=notice, error=error, is_owner=info["role"] == "owner")


@router.get("/homes/{home_id}/sharing", response_class=HTMLResponse)
def sharing(home_id: str, request: Request, services: ServicesDep,
            principal: Principal = Depends(user_only)) -> HTMLResponse:
    """A home's sharing: members control, guests only look; an invitation may end by itself."""
    return sharing_page(home_id, request, services, principal)


@router.post("/homes/{home_id}/sharing", response_class=HTMLResponse)
def share(home_id: str, request: Request, services: ServicesDep, email: str = Form(...), role: str = Form(...),
          days: int = Form(0), principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Invite someone of the same region by email (the same service call as POST /homes/{id}/members)."""
    try:
        services.home.homes.share(principal, home_id, email=email, role=role,
                                  expires_in_s=days * 86400 if days else None)
    except EcohubError as err:
        return sharing_page(home_id, request, services, principal,
                            error=i18n.translate_known(err.message, i18n.current()))
    return sharing_page(home_id, request, services, principal,
                        notice=i18n.gettext("%(email)s can now use this home as %(role)s.", email=email,
                                            role=word(role)))


@router.post("/homes/{home_id}/sharing/{user_id}/revoke", response_class=HTMLResponse)
def revoke_share(home_id: str, user_id: str, request: Request, services: ServicesDep,
                 principal: Principal = Depends(user_only)) -> Response:
    """End someone's access at once (the owner, or a member leaving)."""
    services.home.homes.revoke(principal, home_id, user_id)
    if user_id == principal.subject:
        return RedirectResponse("/console/homes", status_code=303)
    return sharing_page(home_id, request, services, principal, notice=i18n.gettext("Access ended."))


@router.post("/devices/{did}/favourite")
def favourite(did: str, request: Request, services: ServicesDep, on: bool = Form(True), next: str = Form(""),
              principal: Principal = Depends(user_only)) -> Response:
    """Mark a device as a favourite of the account (or not): it is shown first in its home, on every browser."""
    access = services.home.homes.device_access(principal, did, HomeRole.GUEST)
    favourites_of(request, services, principal)  # an older browser's cookie favourites are kept, not lost
    services.home.favourites.set(principal, did, on)
    home = "/console/homes" if access.share_id else f"/console/homes/{access.home_id}"
    target = next if next.startswith("/console/") and not next.startswith("//") else home
    return forget_cookie(request, RedirectResponse(target, status_code=303))


def device_page(did: str, request: Request, services: Services, principal: Principal, *,
                notice: str | None = None, error: str | None = None) -> HTMLResponse:
    """A device's page; its owner also sees the device's shares and the form to share it."""
    d = services.home.devices.get(principal, did)
    access = services.home.homes.device_access(principal, did, HomeRole.GUEST)
    events = services.telemetry.events(access.cell, did, since=access.since_ms, limit=20)
    spec = services.products.compiled(d["model"]).spec
    shares = services.home.homes.device_shares(principal, did) if d["role"] == "owner" else []
    return render(request, "user/device.html", principal, device=Cards(services)(d, rows=None), raw=d,
                  events=[event_view(spec, e) for e in events], ranges=list(RANGES), shares=shares,
                  is_owner=d["role"] == "owner", days=SHARE_DAYS, notice=notice, error=error)


@router.get("/devices/{did}", response_class=HTMLResponse)
def device(did: str, request: Request, services: ServicesDep,
           principal: Principal = Depends(user_only)) -> HTMLResponse:
    """One device: every property with its control, a telemetry chart per numeric property, recent events."""
    return device_page(did, request, services, principal)


@router.post("/devices/{did}/shares", response_class=HTMLResponse)
def share_device(did: str, request: Request, services: ServicesDep, email: str = Form(...), role: str = Form(...),
                 days: int = Form(0), principal: Principal = Depends(user_only)) -> HTMLResponse:
    """Share this one device by email (the same service call as POST /me/devices/{did}/shares)."""
    until = utcnow() + timedelta(days=days) if days else None
    try:
        services.home.homes.share_device(principal, did, email=email, role=role, expires_at=until)
    except EcohubError as err:
        return device_page(did, request, services, principal,
                           error=i18n.translate_known(err.message, i18n.current()))
    return device_page(did, request, services, principal,
                       notice=i18n.gettext("%(email)s can now use this device as %(role)s.", email=email,
                                           role=word(role)))


@router.post("/devices/{did}/shares/{share_id}/end", response_class=HTMLResponse)
def end_device_share(did: str, share_id: str, request: Request, services: ServicesDep,
                     principal: Principal = Depends(user_only)) -> Response:
    """End a share of the device (its owner), or leave one shared with you."""
    leaving = services.home.devices.get(principal, did)["share_id"] == share_id
    services.home.homes.end_share(principal, did, share_id)
    if leaving:
        return RedirectResponse("/console/homes", status_code=303)
    return device_page(did, request, services, principal, notice=i18n.gettext("Access ended."))


@router.get("/devices/{did}/card", response_class=HTMLResponse)
def card(did: str, request: Request, services: ServicesDep, full: bool = False,
         principal: Principal = Depends(user_only)) -> HTMLResponse:
    """A device card fragment."""
    d = Cards(services, favourites_of(request, services, principal))(services.home.devices.get(principal, did),
                                                rows=None if full else CARD_ROWS)
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
    d = Cards(services, favourites_of(request, services, principal))(services.home.devices.get(principal, did),
                                                rows=None if full else CARD_ROWS)
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
    d = Cards(services, favourites_of(request, services, principal))(services.home.devices.get(principal, did),
                                                rows=None if full else CARD_ROWS)
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


@router.get("/notifications/labels.json")
def notification_labels(services: ServicesDep, principal: Principal = Depends(user_only)) -> JSONResponse:
    """What the notification centre needs to word live updates: each device's name and its events in words."""
    out: dict[str, dict[str, Any]] = {}
    accesses = services.home.homes.accessible_devices(principal)
    names = services.home.homes.device_names(services.home.homes.cell_of(principal), [a.did for a in accesses])
    for a in accesses:
        spec = services.products.compiled(services.devices.get(a.did).model).spec
        out[a.did] = {"name": names.get(a.did) or a.did,
                      "events": {f"{e.siid}.{e.iid}": i18n.gettext(type_label(e.type, e.description))
                                 for svc in spec.services for e in svc.events}}
    return JSONResponse({"devices": out, "text": {"offline": i18n.gettext("%(device)s went offline"),
                                                  "online": i18n.gettext("%(device)s is back online"),
                                                  "event": i18n.gettext("%(device)s: %(event)s")}})


@router.get("/notifications.json")
def notifications_json(services: ServicesDep, principal: Principal = Depends(user_only)) -> JSONResponse:
    """The caller's stored notifications for the notification centre (newest 30) and how many are unread."""
    return JSONResponse({"items": services.notifications.list(principal, limit=30, locale=i18n.current()),
                         "unread": services.notifications.unread_count(principal)})


@router.post("/notifications/{notification_id}/read")
def notification_read(notification_id: str, services: ServicesDep,
                      principal: Principal = Depends(user_only)) -> JSONResponse:
    """Mark one stored notification read."""
    return JSONResponse(services.notifications.read(principal, notification_id, locale=i18n.current()))


@router.post("/notifications/read-all")
def notifications_read_all(services: ServicesDep, principal: Principal = Depends(user_only)) -> JSONResponse:
    """Mark every stored notification of the caller read (the centre was opened)."""
    return JSONResponse({"marked": services.notifications.read_all(principal)})


@router.get("/live")
async def live(request: Request, services: ServicesDep, principal: Principal = Depends(user_only)) -> StreamingResponse:
    """Server-sent updates of the caller's devices (properties, online state, events)."""
    dids = frozenset(a.did for a in services.home.homes.accessible_devices(principal))
    hub: LiveHub = request.app.state.console_live
    return StreamingResponse(hub.stream(dids, is_disconnected=request.is_disconnected, user=principal.subject,
                                        locale=i18n.current()),
                             media_type="text/event-stream", headers={"Cache-Control": "no-store"})
