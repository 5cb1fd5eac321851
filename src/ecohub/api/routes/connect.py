"""HTTP routes of connect, twin and telemetry reads: devices, commands, dead letters."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from ecohub.api import paging
from ecohub.api.deps import Millis, OperatorDep, ServicesDep, require
from ecohub.api.paging import CursorParam
from ecohub.auth import Principal, Role, Scope
from ecohub.connect.authority import recorded_refusals
from ecohub.errors import ErrorCode, InvalidInput, Unavailable
from ecohub.home.control import epoch_twin

router = APIRouter(tags=["devices"])
staff = require(Role.OPERATOR, Role.PARTNER)
anyone = require(Role.OPERATOR, Role.PARTNER, Role.USER, Role.APP)  # users: their homes' devices; apps: granted


class DeviceIn(BaseModel):
    """Provision one device for a product."""

    model: str = Field(examples=["acme.plug.v1"])
    cell: str | None = None


class CommandIn(BaseModel):
    """A JSON-RPC request for the device."""

    method: str = Field(examples=["set_properties"])
    params: Any = Field(examples=[[{"siid": 2, "piid": 1, "value": True}]])
    timeout_s: float | None = Field(default=None, gt=0, le=60)


def _since(asked: int | None, epoch_ms: int) -> int | None:
    return max(asked or 0, epoch_ms) if epoch_ms else asked


@router.post("/devices", status_code=201)
def provision(body: DeviceIn, services: ServicesDep,
              principal: Principal = Depends(staff)) -> dict[str, Any]:
    """Provision a device: its did, secret and bind code are shown once; the MQTT endpoint to use."""
    device = services.devices.provision(model=body.model, count=1, cell=body.cell, caller=principal)[0]
    host = services.runtime.mqtt_host or services.settings.mqtt.public_host or services.settings.mqtt.host
    port = services.runtime.mqtt_port or services.settings.mqtt.port
    return {**device.to_dict(), "mqtt": {"host": host, "port": port}}


@router.get("/devices", responses={200: {"headers": paging.LINK_HEADER}})
def list_devices(request: Request, response: Response, services: ServicesDep, model: str | None = None,
                 cell: str | None = None, limit: int = Query(100, ge=1, le=1000), cursor: CursorParam = None,
                 principal: Principal = Depends(staff)) -> list[Any]:
    """Devices, oldest first (partners see their own products' devices); a `Link` header names the next page."""
    after = None
    if cursor is not None:
        position = paging.decode(cursor)
        after = (paging.field(position, "t", str), paging.field(position, "d", str))
    rows = [r.to_dict() for r in services.devices.list(cell=cell, model=model, limit=limit + 1, caller=principal,
                                                       after=after)]
    return paging.page(request, response, rows, limit=limit,
                       position_of=lambda last: {"t": last["created_at"], "d": last["did"]})


@router.get("/devices/{did}")
def get_device(did: str, services: ServicesDep,
               principal: Principal = Depends(staff)) -> dict[str, Any]:
    """A device's facts."""
    return services.devices.get(did, caller=principal).to_dict()


@router.get("/devices/{did}/twin")
def get_twin(did: str, services: ServicesDep,
             principal: Principal = Depends(anyone)) -> dict[str, Any]:
    """Last known state: online, properties {"siid.piid": {value, ts}}, pending desired values, version."""
    info, epoch_ms = services.home.devices.visible(principal, did)
    services.privacy.staff_read(principal, did, "twin")
    twin = services.twin.get(info.cell, did)
    return epoch_twin(twin, epoch_ms) if epoch_ms else twin


@router.get("/devices/{did}/telemetry", responses={200: {"headers": paging.LINK_HEADER}})
def get_telemetry(request: Request, response: Response, did: str, key: str, services: ServicesDep,
                  since: Millis = None, until: Millis = None, limit: int = Query(1000, ge=1, le=10000),
                  bucket: str | None = None, agg: str | None = None,
                  points: int | None = Query(None, ge=-(2**31), le=2**31), cursor: CursorParam = None,
                  principal: Principal = Depends(anyone)) -> dict[str, Any]:
    """Samples of one property in [since, until] (unix ms), oldest first (users: since they bound it).

    Raw samples are the newest `limit` of the range; when older ones remain, a `Link: <…>; rel="next"` header names
    the page before them (walking back in time, each page oldest first). With `bucket` (1m, 5m, 1h, 1d), `points`
    (about N buckets) or `agg` (avg|min|max|last|count|delta) the answer is downsampled: one point per bucket, and
    for bools and enums the state changes as `runs` (a step line); it has no pages.
    """
    info, epoch_ms = services.home.devices.visible(principal, did, scope=Scope.TELEMETRY_READ)
    services.privacy.staff_read(principal, did, "telemetry", key=key, since=since, until=until)
    if bucket is None and agg is None and points is None:
        before = _keyset(cursor)
        samples, older = services.telemetry.series_page(info.cell, did, key, since=_since(since, epoch_ms),
                                                        until=until, limit=limit, before=before)
        paging.link_next(request, response, None if older is None else {"t": older[0], "i": older[1]})
        return {"did": did, "key": key, "samples": samples}
    if cursor is not None:
        raise InvalidInput("a downsampled answer has no pages: drop `cursor`", code=ErrorCode.INVALID_CURSOR)
    return services.telemetry.downsample(info.cell, did, key, model=info.model, since=since, until=until,
                                         bucket=bucket, agg=agg, points=points, floor=epoch_ms)


def _keyset(cursor: str | None) -> tuple[int, int] | None:
    """The (ts, row id) position a telemetry or events cursor names."""
    if cursor is None:
        return None
    position = paging.decode(cursor)
    return paging.field(position, "t", int), paging.field(position, "i", int)


@router.get("/devices/{did}/events", responses={200: {"headers": paging.LINK_HEADER}})
def get_events(request: Request, response: Response, did: str, services: ServicesDep, since: Millis = None,
               limit: int = Query(100, ge=1, le=10000), cursor: CursorParam = None,
               principal: Principal = Depends(anyone)) -> list[Any]:
    """Events the device reported, newest first (users: since they bound it); a `Link` header names the next page."""
    info, epoch_ms = services.home.devices.visible(principal, did, scope=Scope.TELEMETRY_READ)
    services.privacy.staff_read(principal, did, "events")
    events, older = services.telemetry.events_page(info.cell, did, since=_since(since, epoch_ms), limit=limit,
                                                   before=_keyset(cursor))
    paging.link_next(request, response, None if older is None else {"t": older[0], "i": older[1]})
    return events


@router.post("/devices/{did}/commands", responses={202: {"description": "set_properties to an offline device: "
                                                          "the desired values are pending until it reconnects"}})
async def send_command(did: str, body: CommandIn, services: ServicesDep, response: Response,
                       principal: Principal = Depends(anyone)) -> dict[str, Any]:
    """Validate against the spec, send to the device and wait for its reply (504 with the command id on timeout).

    A `set_properties` to a device the twin shows offline answers 202 `{"status": "pending", "desired": {key:
    value}}`: the values wait in the twin and are delivered once when the device reconnects (other methods to an
    offline device time out as before). Users may command devices of homes where they are owner or member; items
    may name a property by `prop`.
    """
    result = await services.home.devices.command(principal, did, body.method, body.params, timeout_s=body.timeout_s)
    if result.get("status") == "pending":
        response.status_code = 202
    return result


@router.get("/dead-letters", responses={200: {"headers": paging.LINK_HEADER}})
def dead_letters(request: Request, response: Response, services: ServicesDep, did: str | None = None,
                 cell: str | None = None, limit: int = Query(100, ge=1, le=1000), cursor: CursorParam = None,
                 principal: Principal = Depends(require(Role.OPERATOR))) -> list[Any]:
    """Refused messages with their reasons, newest first; a `Link` header names the next page."""
    before = None
    if cursor is not None:
        position = paging.decode(cursor)
        before = (paging.field(position, "t", int), paging.field(position, "c", str), paging.field(position, "i", int))
    rows = services.dead_letters.list(cell=cell, did=did, limit=limit + 1, before=before)
    return paging.page(request, response, rows, limit=limit,
                       position_of=lambda last: {"t": last["received_ms"], "c": last["cell"], "i": last["id"]})


@router.post("/devices/{did}/revoke")
async def revoke_device(did: str, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """Disable a device's credentials for good; the broker drops its session."""
    # on the event loop: the broker's async DeviceRevoked handler is scheduled on it (a worker thread has none)
    services.devices.revoke(did)
    return {"did": did, "status": "revoked"}


@router.get("/devices/{did}/refusals")
def device_refusals(did: str, services: ServicesDep, principal: OperatorDep) -> dict[str, Any]:
    """What the broker refused the device (CONNECTs, publish/subscribe outside its ACL), oldest first; ts in unix ms.

    Recorded by the embedded broker of this hub (the last 100 per device, since it started); 503 with another broker.
    """
    services.devices.get(did)  # an unknown device is a 404, not an empty log
    refusals = recorded_refusals(services.devices, did)
    if refusals is None:
        raise Unavailable("this hub's broker keeps no refusal log (only the embedded broker records refusals)",
                          code=ErrorCode.REFUSALS_UNAVAILABLE)
    return {"did": did, "refusals": refusals}
