"""Operator fleet views: devices online, messages per second (live), dead letters, one device's twin and telemetry."""

from __future__ import annotations

import asyncio
import json
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse

from ecohub.api.console.common import ConsoleRoute, operator_only, render
from ecohub.api.console.live import LiveHub
from ecohub.api.console.words import labels_of, on_off, value_text
from ecohub.api.deps import ServicesDep
from ecohub.auth import Principal
from ecohub.bootstrap import Services

router = APIRouter(route_class=ConsoleRoute)
FLEET_LIMIT = 500
RANGES = {"5m": 300, "1h": 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
CHART_POINTS = 500  # one downsampled request per chart, whatever the range


def ingest_totals(services: Services) -> dict[str, int]:
    """The ingest counters summed over this process's workers."""
    totals: Counter[str] = Counter()
    for w in services.workers:
        stats = getattr(w, "stats", None)
        if stats is not None:
            totals.update(stats.to_dict())
    return dict(totals)


def fleet_rows(services: Services, *, model: str | None = None, partner_id: str | None = None) -> list[dict[str, Any]]:
    """Devices with their online state (one twin summary query per cell; the console shows at most FLEET_LIMIT)."""
    devices = [d for d in services.devices.list(model=model, limit=FLEET_LIMIT)
               if partner_id is None or d.partner_id == partner_id]
    by_cell: dict[str, list[str]] = {}
    for d in devices:
        by_cell.setdefault(d.cell, []).append(d.did)
    state = {did: row for cell, dids in by_cell.items() for did, row in services.twin.summaries(cell, dids).items()}
    return [{**d.to_dict(), **state[d.did]} for d in devices]


def fleet_summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts per model and online totals (no device ids: safe for partners too)."""
    per_model: dict[str, dict[str, int]] = {}
    for r in rows:
        m = per_model.setdefault(r["model"], {"devices": 0, "online": 0})
        m["devices"] += 1
        m["online"] += 1 if r["online"] else 0
    return {"devices": len(rows), "online": sum(1 for r in rows if r["online"]), "per_model": per_model}


@router.get("/fleet", response_class=HTMLResponse)
def fleet(request: Request, services: ServicesDep, model: str | None = None,
          principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """The fleet: devices online, live message rate, latest dead letters."""
    rows = fleet_rows(services, model=model or None)
    return render(request, "operator/fleet.html", principal, devices=rows, summary=fleet_summary(rows),
                  ingest=ingest_totals(services), dead=services.dead_letters.list(limit=20), model=model or "")


@router.get("/fleet/summary", response_class=HTMLResponse)
def fleet_summary_fragment(request: Request, services: ServicesDep,
                           principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """The online counters and dead letters (refreshed by the page every few seconds)."""
    rows = fleet_rows(services)
    return render(request, "operator/_fleet_summary.html", principal, summary=fleet_summary(rows),
                  dead=services.dead_letters.list(limit=20), ingest=ingest_totals(services))


@router.get("/fleet/stream")
async def fleet_stream(request: Request, services: ServicesDep,
                       principal: Principal = Depends(operator_only)) -> StreamingResponse:
    """Server-sent ingest counters once a second, with messages per second."""

    async def ticks() -> AsyncIterator[str]:
        yield "retry: 2000\n\n"
        last = ingest_totals(services).get("received", 0)
        last_t = time.monotonic()
        started = last_t
        while time.monotonic() - started < 300 and not await request.is_disconnected():
            await asyncio.sleep(1.0)
            totals = ingest_totals(services)
            now = time.monotonic()
            rate = (totals.get("received", 0) - last) / max(now - last_t, 1e-6)
            last, last_t = totals.get("received", 0), now
            yield f"event: stats\ndata: {json.dumps({**totals, 'rate': round(rate, 1)})}\n\n"

    return StreamingResponse(ticks(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/fleet/devices/{did}", response_class=HTMLResponse)
def device(did: str, request: Request, services: ServicesDep,
           principal: Principal = Depends(operator_only)) -> HTMLResponse:
    """One device as the operator sees it: facts, twin, telemetry charts, events."""
    info = services.devices.get(did)
    services.privacy.staff_read(principal, did, "twin")
    services.privacy.staff_read(principal, did, "events")
    twin = services.twin.get(info.cell, did)
    spec = services.products.compiled(info.model).spec
    labels = labels_of(services, info.model)
    props = []
    for p in spec.properties():
        reported = twin["properties"].get(p.key)
        entry = {"key": p.key, "name": p.name, "description": p.description, "format": p.format,
                 "access": [a.value for a in p.access], "numeric": p.format not in ("string",), "reported": reported,
                 "label": labels[p.key]["label"], "service_label": labels[p.key]["service"],
                 "unit": labels[p.key]["unit"], "value_words": labels[p.key]["values"]}
        entry["text"] = value_text(entry, reported["value"] if reported else None)
        entry["live_words"] = ({"true": on_off(True, writable=p.writable), "false": on_off(False, writable=p.writable)}
                               if p.format == "bool" else {str(k): v for k, v in entry["value_words"].items()})
        props.append(entry)
    return render(request, "operator/device.html", principal, device=info.to_dict(), twin=twin, props=props,
                  events=services.telemetry.events(info.cell, did, limit=20), ranges=list(RANGES))


@router.get("/fleet/live/{did}")
async def device_live(did: str, request: Request, services: ServicesDep,
                      principal: Principal = Depends(operator_only)) -> StreamingResponse:
    """Server-sent updates of one device for its operator page (the twin table and chart update live)."""
    services.devices.get(did)
    services.privacy.staff_read(principal, did, "twin")
    hub: LiveHub = request.app.state.console_live
    return StreamingResponse(hub.stream(frozenset({did}), is_disconnected=request.is_disconnected),
                             media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get("/fleet/devices/{did}/telemetry.json")
def device_telemetry(did: str, key: str, services: ServicesDep, range: str = Query("1h"),
                     principal: Principal = Depends(operator_only)) -> JSONResponse:
    """One property over a time range, downsampled to about CHART_POINTS points, as chart columns."""
    info = services.devices.get(did)
    since = int(time.time() * 1000) - RANGES.get(range, 3600) * 1000
    services.privacy.staff_read(principal, did, "telemetry", key=key, since=since)
    return JSONResponse(chart_columns(services.telemetry.downsample(info.cell, did, key, model=info.model,
                                                                    since=since, points=CHART_POINTS)))


def chart_columns(series: dict[str, Any]) -> dict[str, Any]:
    """A downsampled series as uPlot columns: x in unix seconds, numeric y; states (bools as 0/1) as a step line
    drawn from their runs, numbers from the bucket points."""
    xs: list[float] = []
    ys: list[float] = []
    step = series["kind"] == "state"
    if step:
        runs = series.get("runs", [])
        for r in runs:
            v = r["value"]
            if isinstance(v, bool | int | float):
                xs.append(r["since"] / 1000)
                ys.append(float(v))
        if xs:  # the last state lasts to the end of the range
            xs.append(runs[-1]["until"] / 1000)
            ys.append(ys[-1])
    else:
        for p in series["points"]:
            v = p["value"]
            if isinstance(v, bool | int | float):
                xs.append(p["ts"] / 1000)
                ys.append(float(v))
    count = sum(p["count"] for p in series["points"])
    return {"x": xs, "y": ys, "count": count, "step": step, "bucket": series["bucket"], "agg": series["agg"]}
