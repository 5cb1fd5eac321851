"""Automations and privacy pages; each says plainly when this build does not have that context yet.

Automations call the automations service. Privacy calls the hub's own REST routes in-process with the session's
token: that context is still growing, and its public API keeps the console free of its rules and internals.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from ecohub.api.console.common import COOKIE, ConsoleRoute, render, user_only
from ecohub.api.deps import get_services
from ecohub.bootstrap import Services
from ecohub.errors import EcohubError
from ecohub.home.domain import Principal

router = APIRouter(route_class=ConsoleRoute)
PRIVACY = "/api/v1/privacy"


def has_route(request: Request, path: str) -> bool:
    """Whether the app's API serves `path` (or something below it), from its OpenAPI document (cached)."""
    return any(p.startswith(path) for p in request.app.openapi().get("paths", {}))


async def call_api(request: Request, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Call the app's own REST API in-process as the signed-in user."""
    transport = httpx.ASGITransport(app=request.app)
    headers = {"Authorization": f"Bearer {request.cookies.get(COOKIE, '')}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://console.local", headers=headers,
                                 timeout=30) as client:
        return await client.request(method, path, **kwargs)


def _error(r: httpx.Response) -> str:
    try:
        return str(r.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {r.status_code}"


def _literal(text: str) -> Any:
    """A typed value from a form field: JSON when it parses (true, 21.5, "x"), the text otherwise."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _automations(services: Services) -> Any:
    """The automations service, when this build has one."""
    return getattr(services, "automations", None)


@router.get("/automations", response_class=HTMLResponse)
def automations(request: Request, home: str | None = None, principal: Principal = Depends(user_only),
                services: Services = Depends(get_services)) -> HTMLResponse:
    """The automations of one home and a simple editor (when) → (then), or a note when this build has none."""
    return _automations_page(request, principal, services, home)


def _automations_page(request: Request, principal: Principal, services: Services, home_id: str | None, *,
                      error: str | None = None, saved: str | None = None) -> HTMLResponse:
    service = _automations(services)
    homes = services.home.homes.of_user(principal)
    home_id = home_id or (homes[0]["home_id"] if homes else None)
    rules: list[Any] = []
    devices: list[dict[str, Any]] = []
    if service is not None and home_id:
        rules = service.of_home(principal, home_id)
        devices = [{"did": d["did"], "name": d["name"]} for d in services.home.devices.of_user(principal, home_id)]
    return render(request, "user/automations.html", principal, available=service is not None, rules=rules,
                  devices=devices, homes=homes, home_id=home_id, error=error, saved=saved)


@router.post("/automations", response_class=HTMLResponse)
def create_automation(request: Request, home_id: str = Form(...), name: str = Form(...), when_did: str = Form(...),
                      when_prop: str = Form(...), when_op: str = Form(""), when_value: str = Form(""),
                      then_did: str = Form(...), then_prop: str = Form(...), then_value: str = Form(...),
                      principal: Principal = Depends(user_only),
                      services: Services = Depends(get_services)) -> HTMLResponse:
    """Save a rule "when a property changes (or crosses op value), set a property" with the automations service."""
    service = _automations(services)
    if service is None:
        return _automations_page(request, principal, services, home_id)
    trigger: dict[str, Any] = {"type": "property", "did": when_did, "prop": when_prop}
    if when_op:
        trigger.update(op=when_op, value=_literal(when_value))
    doc = {"name": name, "triggers": [trigger],
           "actions": [{"type": "set", "did": then_did, "values": {then_prop: _literal(then_value)}}]}
    try:
        service.create(principal, home_id, doc)
    except EcohubError as err:
        return _automations_page(request, principal, services, home_id, error=err.message)
    return _automations_page(request, principal, services, home_id, saved=name)


@router.get("/automations/{rule_id}/runs", response_class=HTMLResponse)
def automation_runs(rule_id: str, request: Request, principal: Principal = Depends(user_only),
                    services: Services = Depends(get_services)) -> HTMLResponse:
    """The latest runs of one rule (a fragment)."""
    service = _automations(services)
    runs = service.runs(principal, rule_id, limit=10) if service is not None else []
    return render(request, "user/_runs.html", principal, runs=runs, error=None)


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, principal: Principal = Depends(user_only),
                  services: Services = Depends(get_services)) -> HTMLResponse:
    """Consents, export and erasure (what this build's privacy API offers) and the account's facts."""
    consents: Any = None
    if has_route(request, f"{PRIVACY}/consents"):
        r = await call_api(request, "GET", f"{PRIVACY}/consents")
        consents = r.json() if r.status_code == 200 else None
    return render(request, "user/privacy.html", principal, profile=services.home.accounts.profile(principal),
                  consents=consents, can_export=has_route(request, f"{PRIVACY}/export"),
                  can_erase=has_route(request, f"{PRIVACY}/me"), message=None)


@router.post("/privacy/export")
async def export(request: Request, password: str = Form(""), principal: Principal = Depends(user_only)) -> Response:
    """Request the caller's data export (the password proves identity again): the zip, or the reason."""
    r = await call_api(request, "GET", f"{PRIVACY}/export", headers={"X-Password": password})
    if r.status_code == 200 and "zip" in r.headers.get("content-type", ""):
        return Response(r.content, media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="ecohub-export.zip"'})
    message = "Export requested: " + (r.text if r.status_code < 400 else _error(r))
    return HTMLResponse(f'<p class="notice" role="status">{escape(message, quote=False)}</p>')


@router.post("/privacy/erase")
async def erase(request: Request, confirm: str = Form(""), password: str = Form(""),
                principal: Principal = Depends(user_only)) -> Response:
    """Ask for erasure of the account (needs the word ERASE typed in and the password)."""
    if confirm.strip() != "ERASE":
        return HTMLResponse('<p class="error" role="alert">Type ERASE to confirm.</p>')
    r = await call_api(request, "DELETE", f"{PRIVACY}/me", headers={"X-Password": password})
    message = "Erasure requested: " + (r.text if r.status_code < 400 else _error(r))
    return HTMLResponse(f'<p class="notice" role="status">{escape(message, quote=False)}</p>')
